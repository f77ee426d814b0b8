"""Temporary files left by a process that was killed: recognised by the pid in their name and
removed by the next run, but only once that process is gone (a live one may still need them).

Names with a pid, as this package writes them: ``.<name>.part-<pid>`` (an archive member being
extracted), ``.staging-<pid>`` (GRID's staging folder), ``.<store>.tmp-<pid>`` and
``.<store>.old-<pid>`` (a store being written or replaced), ``<name>.tmp<pid>`` (a checkpoint).
A download's ``<name>.part`` carries no pid on purpose: it is kept to resume.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_STALE = re.compile(r"^(?:\..+\.part-|\.staging-|\..+\.tmp-|\..+\.old-|.+\.pt\.tmp)(\d+)$")


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists (ours included; another user's counts as alive)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def stale_pid(name: str) -> int | None:
    """The pid in a temporary name this package writes, or None for any other name."""
    m = _STALE.match(name)
    return int(m.group(1)) if m else None


def remove_stale(folder: Path, recursive: bool = False) -> list[Path]:
    """Remove the temporary files and folders of dead processes in ``folder``; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    try:
        walk = os.walk(folder) if recursive else [(str(folder), *next(os.walk(folder))[1:])]
    except StopIteration:  # unreadable folder
        return []
    for base, dirs, files in walk:
        for name in list(dirs) + list(files):
            pid = stale_pid(name)
            if pid is None or pid_alive(pid):
                continue
            path = Path(base) / name
            if name in dirs:
                dirs.remove(name)
            try:  # best effort: a read-only folder keeps them, and the run goes on
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(path)
    return removed
