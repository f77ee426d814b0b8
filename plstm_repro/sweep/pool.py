"""The process pool of ``--jobs K``: K worker processes take grid points from one queue."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .shards import threads_per_job


@dataclass
class Outcome:
    """How one grid point ended in this process: finished | skipped | busy | diverged |
    unresumable | error | killed | crashed, with the line to show."""

    index: int
    status: str
    message: str = ""
    run_id: str | None = None


def _worker(work, tasks, results, stop, threads: int) -> None:
    """A --jobs process: its own session (a terminal's Ctrl-C goes to the parent, which
    forwards one SIGTERM), ``threads`` torch threads, points until the queue ends or ``stop``."""
    import queue
    import traceback

    os.setsid()
    import torch

    torch.set_num_threads(threads)
    while not stop.is_set():
        try:
            task = tasks.get(timeout=0.5)
        except queue.Empty:
            continue
        if task is None:
            break
        index = task["index"]
        try:
            out = work(task, echo=lambda s, i=index: results.put((i, "line", s)))
        except KeyboardInterrupt:
            results.put((index, "done", Outcome(index, "killed", "interrupted")))
            break
        except Exception:  # noqa: BLE001 - reported by the parent with its traceback
            out = Outcome(index, "crashed", traceback.format_exc())
        results.put((index, "done", out))


def run_pool(tasks: list[dict], jobs: int, echo, on_done, work) -> None:
    """Run ``work(task, echo)`` (a module-level function: it crosses to a spawned process) on
    every task in ``jobs`` processes. SIGINT or SIGTERM here is
    forwarded once to every worker as SIGTERM: each checkpoints its run, marks it KILLED and
    stops; then ``Stopped`` is raised here."""
    import multiprocessing as mp
    import queue
    import signal

    from ..errors import Stopped

    ctx = mp.get_context("spawn")
    task_q, result_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    for t in tasks:
        task_q.put(t)
    n = min(jobs, len(tasks))
    for _ in range(n):
        task_q.put(None)
    procs = [ctx.Process(target=_worker, args=(work, task_q, result_q, stop, threads_per_job(jobs)))
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
