"""The data layer's entry points: ``load_split`` (a DataConfig, split, seed -> a split: what
:class:`.protocol.Split` declares, ``len``, ``lengths``, ``batch(idx)``, ``task``,
``num_outputs``, ``input_size`` and the optional parts), ``download_dataset``,
``preprocess_dataset`` and ``ensure_generated``. Each dispatches through the dataset's spec in
:mod:`.registry`, which names the functions to call; they are imported on first use, so
listing datasets costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .registry import FILES, REGISTRY, SYNTHETIC, names, names_where

DATASETS = tuple(REGISTRY)
FROM_FILES = tuple(names(FILES, SYNTHETIC))
GRID_FOLDERS = {d.name: d.folder for d in REGISTRY.values() if d.speakers}

# The train and test sets of a run come from the run's seed; the offset keeps them disjoint.
_TEST_SEED_OFFSET = 1_000_003


def __getattr__(name: str):
    # SeqData imports torch: loaded on first use, so that importing a data module (GRID's
    # preprocessing workers, ``plstm --help``) does not pay for torch
    if name == "SeqData":
        from .base import SeqData
        return SeqData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def data_root(root: Path | str | None, overrides: list[str] | None = None) -> Path:
    """Where a command reads the datasets: its ``--root`` option or a ``--set data.root=...``
    (both: they must name the same folder), else the config's default. One rule for every
    command, so that a root given either way is the one used."""
    from ..config import RunConfig, apply_overrides

    sets = [o for o in overrides or [] if o.split("=", 1)[0].strip() == "data.root"]
    cfg = apply_overrides(RunConfig(), sets)
    if root is not None and sets and Path(root) != Path(cfg.data.root):
        raise DataError(f"--root {root} and --set data.root={cfg.data.root} name different "
                        "data roots; give one of them")
    return Path(root) if root is not None else Path(cfg.data.root)


def check_dataset(name: str) -> str:
    if name not in REGISTRY:
        raise DataError(f"dataset: unknown {name!r}; valid: {', '.join(DATASETS)}")
    return name


def load_split(cfg, split: str, seed: int):
    """The ``split`` ("train" or "test") of the dataset ``cfg.name`` (a DataConfig)."""
    spec = REGISTRY[check_dataset(cfg.name)]
    if split not in ("train", "test"):
        raise DataError(f"split: expected train or test, got {split!r}")
    if cfg.fresh and not spec.fresh:
        raise DataError(f"data.fresh: only the generated frequency tasks "
                        f"({', '.join(names_where(fresh=True))}) draw new samples every "
                        f"epoch, not {spec.name}")
    n = cfg.n_train if split == "train" else cfg.n_test
    s = seed if split == "train" else seed + _TEST_SEED_OFFSET
    return spec.function("load")(cfg, split, n, s)


def parse_speakers(text: str) -> list[int] | None:
    """"1-4,7" -> [1, 2, 3, 4, 7]; "" -> None (all)."""
    if not text.strip():
        return None
    out = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise DataError(f"speakers: expected numbers and ranges like 1-4,7; got {text!r}"
                            ) from None
        if not 1 <= lo <= hi <= 34:  # checked before expanding: 1-1000000 is not a list to print
            raise DataError(f"speakers: {part.strip()!r} is not within GRID's speakers 1-34")
        out += range(lo, hi + 1)
    return out


def _speakers_kw(spec, speakers: str) -> dict:
    if speakers and not spec.speakers:
        raise DataError(f"--speakers: only GRID has speakers, not {spec.name}")
    return {"speakers": speakers} if spec.speakers else {}


def download_dataset(name: str, root: Path | str = "data", from_dir: Path | None = None,
                     progress: bool = True, echo=print, speakers: str = "") -> str:
    """``plstm download NAME``: fetch (or place, or generate) a dataset's files; returns where
    they are, in a sentence. ``speakers`` ("1-34", GRID only) picks the speakers."""
    spec = REGISTRY[check_dataset(name)]
    kw = _speakers_kw(spec, speakers)
    if not spec.download:
        return f"{name} is generated from a seed (or bundled): nothing to download"
    return spec.function("download")(Path(root), from_dir, progress, echo, **kw)


def preprocess_dataset(name: str, root: Path | str = "data", progress: bool = True,
                       echo=print, speakers: str = "") -> dict:
    """``plstm preprocess NAME`` for datasets from files: decode them once into caches."""
    spec = REGISTRY[check_dataset(name)]
    if not spec.prepare:
        raise DataError(f"preprocess: {name} needs no preprocessing")
    kw = {"speakers": speakers} if spec.speakers else {}
    return spec.function("prepare")(Path(root), progress, echo, **kw)


def ensure_generated(cfg, progress: bool = True, echo=print) -> None:
    """A synthetic dataset that comes as files (synthetic-nmnist, synthetic-grid) is generated
    and preprocessed, offline, the first time a run needs it; real datasets are never fetched
    behind the user's back (``plstm download`` says where they come from)."""
    from .store import Store

    spec = REGISTRY.get(cfg.name)
    if spec is None or not spec.stores:
        return
    stores = spec.function("stores")(Path(cfg.root))
    if all(Store.exists(p) for p in stores):
        return
    echo(f"{cfg.name}: generating the SYNTHETIC recordings once (a few minutes)")
    download_dataset(cfg.name, cfg.root, progress=progress, echo=echo)
    preprocess_dataset(cfg.name, cfg.root, progress=progress, echo=echo)


__all__ = ["DATASETS", "SeqData", "check_dataset", "download_dataset", "ensure_generated",
           "load_split",
           "preprocess_dataset"]
