"""A grid of runs spread over processes and machines that share one tracking store.

- ``--shard i/N`` keeps every N-th grid point, starting at the i-th: N machines running the N
  shards against one tracking server complete the grid between them.
- ``--jobs K`` trains K grid points at once on this machine, each in its own process with
  ``cores // K`` torch threads.
- Claims: before training a config a process writes a claim into the store (a new run, or a
  token on the unfinished run it resumes), waits ``SETTLE_S``, and reads the claims back; of
  all live claims on one config the oldest run wins and the others back off. A claim stays live
  while its process refreshes the run's heartbeat tag; a RUNNING run whose heartbeat is older
  than ``STALE_S`` (a process killed with SIGKILL, a machine lost) is taken as dead and resumed.
  So two processes never train the same config at once, and rerunning any shard is safe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from .tracking import FAILED, FINISHED, HEARTBEAT_TAG, KILLED, RUNNING

SETTLE_S = 1.0  # between writing a claim and reading the claims back (>> store latency);
# PLSTM_CLAIM_SETTLE_S overrides it (a slow remote store wants more)
HEARTBEAT_S = 20.0
STALE_S = 120.0
CLAIM_TAG = "plstm.claim"
SUPERSEDED_TAG = "plstm.superseded_by"
FAILURE_TAG = "plstm.failure"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 1 <= i <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/N such as 2/4, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"--shard: expected 1 <= i <= N, got {text!r}")
    return i, n


def select_shard(plan: list, shard: tuple[int, int]) -> list:
    """Every N-th point of ``plan``, starting at the i-th (1-based): disjoint, covering."""
    i, n = shard
    return [p for k, p in enumerate(plan) if k % n == i - 1]


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def heartbeat_age(run, now: float | None = None) -> float:
    beat = run.data.tags.get(HEARTBEAT_TAG)
    t = float(beat) if beat else run.info.start_time / 1000.0
    return (now or time.time()) - t


def is_live(run, now: float | None = None) -> bool:
    """RUNNING, and its process refreshed the heartbeat recently."""
    return run.info.status == RUNNING and heartbeat_age(run, now) < STALE_S


def claim_key(run) -> tuple:
    return run.info.start_time, run.info.run_id


@dataclass
class Decision:
    """What to do with one config: ``skip`` (finished), ``diverged`` (failed on a non-finite
    loss: rerunning gives the same), ``busy`` (another process trains it), ``resume``
    (``run_id`` claimed, continue from its checkpoint) or ``new`` (``run_id`` claimed, fresh)."""

    action: str
    run_id: str | None = None
    note: str = ""


def settle_s() -> float:
    return float(os.environ.get("PLSTM_CLAIM_SETTLE_S", SETTLE_S))


def won(tracker, experiment: str, config_hash: str, mine: str, token: str) -> bool:
    """After the settle time: is my claim the oldest live one on this config, and still mine?"""
    time.sleep(settle_s())
    runs = tracker.find(experiment, config_hash, (RUNNING,))
    live = [r for r in runs if is_live(r)]
    me = next((r for r in live if r.info.run_id == mine), None)
    if me is None or me.data.tags.get(CLAIM_TAG) != token:
        return False
    return min(live, key=claim_key).info.run_id == mine


def claim_resume(tracker, experiment: str, config_hash: str, run) -> bool:
    token = new_token()
    previous = run.info.status
    tracker.set_tags(run.info.run_id, {CLAIM_TAG: token, HEARTBEAT_TAG: str(int(time.time()))})
    tracker.reopen(run.info.run_id)
    try:
        if won(tracker, experiment, config_hash, run.info.run_id, token):
            return True
    except BaseException:  # interrupted while waiting: give the run back
        tracker.end(run.info.run_id, previous if previous != RUNNING else KILLED)
        raise
    if previous != RUNNING:  # give it back as it was, unless another process holds it now
        current = tracker.get_run(run.info.run_id)
        if current.data.tags.get(CLAIM_TAG) == token:
            tracker.end(run.info.run_id, previous)
    return False


def claim_new(tracker, experiment: str, config_hash: str, start) -> str | None:
    """``start(tags)`` creates the run with these extra tags; returns its id if the claim won
    (a losing run is deleted: it holds nothing)."""
    token = new_token()
    rid = start({CLAIM_TAG: token, HEARTBEAT_TAG: str(int(time.time()))})
    try:
        if won(tracker, experiment, config_hash, rid, token):
            return rid
    except BaseException:  # interrupted while waiting: the run holds nothing
        tracker.end(rid, KILLED)
        raise
    tracker.end(rid, KILLED)
    tracker.delete(rid)
    return None


class Heartbeat:
    """Refresh a run's heartbeat tag every ``every`` seconds from a daemon thread."""

    def __init__(self, tracker, run_id: str, every: float = HEARTBEAT_S):
        self.tracker, self.run_id, self.every = tracker, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="plstm-heartbeat")

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # a missed beat must not stop training
                self.tracker.heartbeat(self.run_id)

    def __enter__(self):
        if hasattr(self.tracker, "heartbeat"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def unfinished(runs: list) -> list:
    """Killed, failed, or RUNNING with a dead process; not superseded by a restart."""
    return [r for r in runs if SUPERSEDED_TAG not in r.data.tags and (
        r.info.status in (KILLED, FAILED) or (r.info.status == RUNNING and not is_live(r)))]


def summarize(runs_by_hash: dict[str, list]) -> dict[str, str]:
    """config hash -> finished | diverged | live | unfinished | missing, from its runs."""
    out = {}
    for h, runs in runs_by_hash.items():
        if any(r.info.status == FINISHED for r in runs):
            out[h] = "finished"
        elif any(is_live(r) for r in runs):
            out[h] = "live"
        elif any(r.info.status == FAILED and FAILURE_TAG in r.data.tags
                 and SUPERSEDED_TAG not in r.data.tags for r in runs):
            out[h] = "diverged"
        elif runs:
            out[h] = "unfinished"
        else:
            out[h] = "missing"
    return out


@dataclass
class Outcome:
    """How one grid point ended in this process: finished | skipped | busy | diverged |
    unresumable | error | killed | crashed, with the line to show."""

    index: int
    status: str
    message: str = ""
    run_id: str | None = None


def _worker(tasks, results, stop, threads: int) -> None:
    """A --jobs process: its own session (a terminal's Ctrl-C goes to the parent, which
    forwards one SIGTERM), ``threads`` torch threads, points until the queue ends or ``stop``."""
    import queue
    import traceback

    os.setsid()
    import torch

    torch.set_num_threads(threads)
    from .runner import run_task

    while not stop.is_set():
        try:
            task = tasks.get(timeout=0.5)
        except queue.Empty:
            continue
        if task is None:
            break
        index = task["index"]
        try:
            out = run_task(task, echo=lambda s, i=index: results.put((i, "line", s)))
        except KeyboardInterrupt:
            results.put((index, "done", Outcome(index, "killed", "interrupted")))
            break
        except Exception:  # noqa: BLE001 - reported by the parent with its traceback
            out = Outcome(index, "crashed", traceback.format_exc())
        results.put((index, "done", out))


def run_pool(tasks: list[dict], jobs: int, echo, on_done) -> None:
    """Run ``tasks`` (see ``runner.run_task``) in ``jobs`` processes. SIGINT or SIGTERM here is
    forwarded once to every worker as SIGTERM: each checkpoints its run, marks it KILLED and
    stops; then ``Stopped`` is raised here."""
    import multiprocessing as mp
    import queue
    import signal

    from .errors import Stopped

    ctx = mp.get_context("spawn")
    task_q, result_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    for t in tasks:
        task_q.put(t)
    n = min(jobs, len(tasks))
    for _ in range(n):
        task_q.put(None)
    procs = [ctx.Process(target=_worker, args=(task_q, result_q, stop, threads_per_job(jobs)))
             for _ in range(n)]
    for p in procs:
        p.start()
    got = {"signum": None}

    def forward(signum, frame):
        if got["signum"] is None:
            got["signum"] = signum
            stop.set()
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} \
        if main else {}
    try:
        remaining = len(tasks)
        while remaining:
            try:
                _, kind, payload = result_q.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if kind == "line":
                echo(payload)
            else:
                on_done(payload)
                remaining -= 1
        for p in procs:
            p.join()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if got["signum"] is not None:
        raise Stopped(got["signum"])
