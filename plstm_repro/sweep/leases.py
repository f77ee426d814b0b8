"""Leases: which process trains a grid point, so no two train one config at once.

Before training a config a process writes a lease into the store (a new run, or a token on the
unfinished run it resumes), waits ``SETTLE_S``, and reads the leases back; of all live leases
on one config the oldest run wins and the others back off. A lease stays live while its process
refreshes the run's heartbeat tag; a RUNNING run whose heartbeat is older than ``STALE_S`` (a
process killed with SIGKILL, a machine lost) is taken as dead and resumed. So two processes
never train the same config at once, and rerunning any shard is safe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid

from .. import results
from ..tracking import FAILED, FINISHED, HEARTBEAT_TAG, KILLED, RUNNING

SETTLE_S = 1.0  # between writing a lease and reading the leases back (>> store latency);
# PLSTM_LEASE_SETTLE_S (or its older name PLSTM_CLAIM_SETTLE_S) overrides it (a slow remote
# store wants more)
HEARTBEAT_S = 20.0
STALE_S = 120.0
LEASE_TAG = "plstm.lease"
SUPERSEDED_TAG = "plstm.superseded_by"
FAILURE_TAG = "plstm.failure"


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def heartbeat_age(run, now: float | None = None) -> float:
    beat = run.data.tags.get(HEARTBEAT_TAG)
    t = float(beat) if beat else run.info.start_time / 1000.0
    return (now or time.time()) - t


def is_live(run, now: float | None = None) -> bool:
    """RUNNING, and its process refreshed the heartbeat recently."""
    return run.info.status == RUNNING and heartbeat_age(run, now) < STALE_S


def lease_key(run) -> tuple:
    return run.info.start_time, run.info.run_id


def settle_s() -> float:
    return float(os.environ.get("PLSTM_LEASE_SETTLE_S",
                                os.environ.get("PLSTM_CLAIM_SETTLE_S", SETTLE_S)))


def won(tracker, experiment: str, spec_hash: str, mine: str, token: str) -> bool:
    """After the settle time: is my lease the oldest live one on this config, and still mine?"""
    time.sleep(settle_s())
    runs = results.find(tracker, experiment, spec_hash, (RUNNING,))
    live = [r for r in runs if is_live(r)]
    me = next((r for r in live if r.info.run_id == mine), None)
    if me is None or me.data.tags.get(LEASE_TAG) != token:
        return False
    return min(live, key=lease_key).info.run_id == mine


def lease_resume(tracker, experiment: str, spec_hash: str, run) -> bool:
    token = new_token()
    previous = run.info.status
    tracker.set_tags(run.info.run_id, {LEASE_TAG: token, HEARTBEAT_TAG: str(int(time.time()))})
    tracker.reopen(run.info.run_id)
    try:
        if won(tracker, experiment, spec_hash, run.info.run_id, token):
            return True
    except BaseException:  # interrupted while waiting: give the run back
        tracker.end(run.info.run_id, previous if previous != RUNNING else KILLED)
        raise
    if previous != RUNNING:  # give it back as it was, unless another process holds it now
        current = tracker.get_run(run.info.run_id)
        if current.data.tags.get(LEASE_TAG) == token:
            tracker.end(run.info.run_id, previous)
    return False


def lease_new(tracker, experiment: str, spec_hash: str, start) -> str | None:
    """``start(tags)`` creates the run with these extra tags; returns its id if the lease won
    (a losing run is deleted: it holds nothing)."""
    token = new_token()
    rid = start({LEASE_TAG: token, HEARTBEAT_TAG: str(int(time.time()))})
    try:
        if won(tracker, experiment, spec_hash, rid, token):
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
