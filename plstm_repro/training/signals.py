"""Stop signals: SIGINT and SIGTERM end a run at the next batch boundary, checkpointed."""

from __future__ import annotations

import signal
import threading

from ..errors import Stopped


class StopRequest:
    """SIGINT and SIGTERM (what a scheduler sends) set a flag that the loop reads between
    batches: the step in progress completes, a checkpoint is written, then the run ends KILLED.
    A second signal interrupts at once. Only the main thread can own signal handlers; elsewhere
    this does nothing and Ctrl-C raises KeyboardInterrupt as usual."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum
