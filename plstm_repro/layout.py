"""Where files live under a runs folder, in one place, and the one way they are written.

``runs/`` holds the tracking store (``mlflow.db``, ``mlartifacts/``), each run's checkpoint
(``checkpoints/<run id>/last.pt``), each artifact's figure and tables
(``figures/<artifact>/<scale>/``) and the report (``report/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path = Path("runs")

    def checkpoint(self, run_id: str) -> Path:
        return Path(self.root) / "checkpoints" / run_id / "last.pt"

    def checkpoints(self) -> Path:
        return Path(self.root) / "checkpoints"

    def figures(self, artifact_id: str, scale: str) -> Path:
        return Path(self.root) / "figures" / artifact_id / scale

    def report(self) -> Path:
        return Path(self.root) / "report"


def checkpoint_path(root: Path, run_id: str) -> Path:
    return Layout(Path(root)).checkpoint(run_id)


def figure_dir(root: Path, artifact_id: str, scale: str) -> Path:
    return Layout(Path(root)).figures(artifact_id, scale)


def temp_name(path: Path) -> Path:
    """A sibling of ``path`` no other process writes (same folder, so the rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def publish(tmp: Path, path: Path) -> Path:
    """Rename the finished ``tmp`` onto ``path``: a reader sees the old file or the whole new
    one, never a part; on failure the temp file is removed."""
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(path)


def atomic_write(path: Path, write) -> Path:
    """``write(tmp)`` fills a temp file beside ``path``, then it replaces ``path`` at once."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        return publish(tmp, path)
    except OSError as e:  # a full disk, a read-only folder: one line naming the file
        tmp.unlink(missing_ok=True)
        from .errors import EnvironmentProblem

        raise EnvironmentProblem(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
