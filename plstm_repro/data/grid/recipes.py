"""The registry's functions for ``grid`` and ``synthetic-grid`` (see data/registry.py): download,
prepare and the caches of the synthetic corpus. Their folders under the data root are declared
in the registry."""

from __future__ import annotations

import shutil
from pathlib import Path

from .cache import preprocess_grid
from .layout import download_grid


def _folder(name: str) -> str:
    from ..registry import REGISTRY
    return REGISTRY[name].folder


def download_real(root: Path, from_dir: Path | None, progress: bool, echo,
                  speakers: str = "") -> str:
    """``plstm download grid``: the chosen speakers, from the web or ``from_dir``."""
    from .. import parse_speakers

    where = download_grid(root, parse_speakers(speakers), from_dir, progress=progress,
                          echo=echo, folder=_folder("grid"))
    return f"grid is in {where}; next: plstm preprocess grid"


def download_synthetic(root: Path, from_dir: Path | None, progress: bool, echo,
                       speakers: str = "") -> str:
    """``plstm download synthetic-grid``: generated offline (3 speakers, 100 sentences), or
    placed from ``from_dir`` like the real corpus."""
    from .. import parse_speakers

    name, folder = "synthetic-grid", _folder("synthetic-grid")
    if from_dir is not None:
        where = download_grid(root, parse_speakers(speakers), from_dir, progress=progress,
                              echo=echo, folder=folder)
        return f"{name} is in {where}; next: plstm preprocess {name}"
    from .synth import generate_synthetic_grid

    tmp = root / ".synthetic-grid-src"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        generate_synthetic_grid(tmp, speakers=3, sentences=100)
        echo("synthetic-grid: generated SYNTHETIC utterances (not GRID)")
        where = download_grid(root, None, tmp, progress=progress, echo=echo, folder=folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"{name} is in {where}; next: plstm preprocess {name}"


def prepare_real(root: Path, progress: bool, echo, speakers: str = "") -> dict:
    """``plstm preprocess grid``."""
    from .. import parse_speakers

    return preprocess_grid(root, parse_speakers(speakers), progress=progress, echo=echo,
                           folder=_folder("grid"))


def prepare_synthetic(root: Path, progress: bool, echo, speakers: str = "") -> dict:
    """``plstm preprocess synthetic-grid``."""
    from .. import parse_speakers

    return preprocess_grid(root, parse_speakers(speakers), progress=progress, echo=echo,
                           folder=_folder("synthetic-grid"))


def synthetic_stores(root: Path) -> list[Path]:
    """The caches the first run on ``synthetic-grid`` generates."""
    return [root / _folder("synthetic-grid") / "cache" / s for s in ("train", "test")]

