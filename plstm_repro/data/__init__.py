"""Dataset registry: name -> a loader of (DataConfig, split, seed) -> a split with the batch
interface of :class:`SeqData` (``len``, ``lengths``, ``batch(idx)``, ``task``, ``num_outputs``,
``input_size``), plus ``download`` and ``preprocess`` for the datasets that come from files.

Loaders import their module lazily, so listing datasets costs nothing.
"""

from __future__ import annotations

from pathlib import Path

DATASETS = ("sines", "sines2", "adding", "mnist", "digits", "nmnist", "synthetic-nmnist", "grid",
            "synthetic-grid")
FROM_FILES = ("mnist", "nmnist", "synthetic-nmnist", "grid", "synthetic-grid")
GRID_FOLDERS = {"grid": "GRID", "synthetic-grid": "SyntheticGRID"}

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
        raise ValueError(f"--root {root} and --set data.root={cfg.data.root} name different "
                         "data roots; give one of them")
    return Path(root) if root is not None else Path(cfg.data.root)


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown {name!r}; valid: {', '.join(DATASETS)}")
    return name


def _nmnist_source(name: str):
    from . import nmnist

    return nmnist.SYNTHETIC if name == "synthetic-nmnist" else nmnist.NMNIST


def load_split(cfg, split: str, seed: int):
    """The ``split`` ("train" or "test") of the dataset ``cfg.name`` (a DataConfig)."""
    name = check_dataset(cfg.name)
    if split not in ("train", "test"):
        raise ValueError(f"split: expected train or test, got {split!r}")
    n = cfg.n_train if split == "train" else cfg.n_test
    s = seed if split == "train" else seed + _TEST_SEED_OFFSET
    if name in ("sines", "sines2"):
        from .sines import PROTOCOLS, make_sines, make_sines_authors

        if cfg.protocol not in PROTOCOLS:
            raise ValueError(f"data.protocol: expected one of {', '.join(PROTOCOLS)}, got "
                             f"{cfg.protocol!r}")
        gen = make_sines_authors if cfg.protocol == "authors" else make_sines

        def make(key: int):
            return gen(n, key, sampling=cfg.sampling, superimposed=name == "sines2")
        if cfg.fresh:
            from .base import FreshSplit
            return FreshSplit(make, s)
        return make(s)
    if cfg.fresh:
        raise ValueError(f"data.fresh: only the generated frequency tasks (sines, sines2) draw "
                         f"new samples every epoch, not {name}")
    if name == "adding":
        from .adding import make_adding
        return make_adding(n, s, min_len=cfg.min_len, max_len=cfg.max_len)
    if name == "mnist":
        from .mnist import load_mnist
        return load_mnist(Path(cfg.root), split, n=n)
    if name in ("nmnist", "synthetic-nmnist"):
        from .events import EventSplit, stratified_subset
        from .nmnist import open_store

        store = open_store(cfg.root, split, _nmnist_source(name))
        # one subset for every seed and model (seed 0), so that runs compare on the same data
        idx = stratified_subset(store.records["label"], n, seed=0)
        return EventSplit(store, idx, rho=cfg.rho, seed=s, train=split == "train", name=name)
    if name in GRID_FOLDERS:
        return _grid_split(cfg, split, n, s)
    from .digits import load_digits_seq
    return load_digits_seq(split, seed=0)


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
            raise ValueError(f"speakers: expected numbers and ranges like 1-4,7; got {text!r}"
                             ) from None
        if not 1 <= lo <= hi <= 34:  # checked before expanding: 1-1000000 is not a list to print
            raise ValueError(f"speakers: {part.strip()!r} is not within GRID's speakers 1-34")
        out += range(lo, hi + 1)
    return out


def _grid_store(cfg, split: str):
    from .store import Store

    path = Path(cfg.root) / GRID_FOLDERS[cfg.name] / "cache" / split
    if not Store.exists(path):
        raise FileNotFoundError(
            f"{cfg.name} {split}: no preprocessed cache at {path}. Run `plstm download "
            f"{cfg.name}` (or `--from DIR`) and then `plstm preprocess {cfg.name}`.")
    return Store(path)


def _grid_split(cfg, split: str, n: int, seed: int):
    import numpy as np

    from .grid_split import AUDIO_TABLES, GridSplit, mfcc_stats

    store = _grid_store(cfg, split)
    idx = np.arange(len(store))
    speakers = parse_speakers(cfg.speakers)
    if speakers is not None:
        idx = idx[np.isin(store.records["speaker"], speakers)]
        if len(idx) == 0:
            raise ValueError(f"data.speakers: none of {speakers} is in {store.path}")
    if n < len(idx):  # one subset for every seed and model
        idx = np.sort(np.random.default_rng(0).choice(idx, n, replace=False))
    train_store = store if split == "train" else _grid_store(cfg, "train")
    stats = mfcc_stats(train_store, AUDIO_TABLES.get(cfg.audio, "mfcc_hi"))
    return GridSplit(store, idx, audio=cfg.audio, modalities=cfg.modalities,
                     modality_dropout=cfg.modality_dropout, seed=seed, train=split == "train",
                     stats=stats, name=cfg.name)


def download_dataset(name: str, root: Path | str = "data", from_dir: Path | None = None,
                     progress: bool = True, echo=print, speakers: str = "") -> str:
    """``plstm download NAME``: fetch (or place, or generate) a dataset's files; returns where
    they are, in a sentence. ``speakers`` ("1-34", GRID only) picks the speakers."""
    name = check_dataset(name)
    if speakers and name not in GRID_FOLDERS:
        raise ValueError(f"--speakers: only GRID has speakers, not {name}")
    if name not in FROM_FILES:
        return f"{name} is generated from a seed (or bundled): nothing to download"
    if name in GRID_FOLDERS:
        return _download_grid(name, Path(root), from_dir, progress, echo, speakers)
    if name == "mnist":
        from .mnist import download_mnist
        return f"mnist is in {download_mnist(Path(root), from_dir)}"
    from .nmnist import download_nmnist
    if name == "synthetic-nmnist" and from_dir is None:
        from .synthetic_nmnist import generate_synthetic_nmnist
        return f"{name} is in {generate_synthetic_nmnist(root, progress=progress, echo=echo)}"
    folder = download_nmnist(root, from_dir, progress, echo, _nmnist_source(name))
    return f"{name} is in {folder}; next: plstm preprocess {name}"


def preprocess_dataset(name: str, root: Path | str = "data", progress: bool = True,
                       echo=print, speakers: str = "") -> dict:
    """``plstm preprocess NAME`` for datasets from files: decode them once into caches."""
    name = check_dataset(name)
    if name in GRID_FOLDERS:
        from .grid import preprocess_grid
        return preprocess_grid(Path(root), parse_speakers(speakers), progress=progress,
                               echo=echo, folder=GRID_FOLDERS[name])
    if name in ("nmnist", "synthetic-nmnist"):
        from .nmnist import preprocess_nmnist
        return preprocess_nmnist(root, progress, echo, _nmnist_source(name))
    raise ValueError(f"preprocess: {name} needs no preprocessing")


def _download_grid(name, root: Path, from_dir, progress, echo, speakers: str) -> str:
    from .grid import download_grid

    folder = GRID_FOLDERS[name]
    if name == "synthetic-grid" and from_dir is None:
        import shutil

        from .grid_synth import generate_synthetic_grid

        tmp = root / ".synthetic-grid-src"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            generate_synthetic_grid(tmp, speakers=3, sentences=100)
            echo("synthetic-grid: generated SYNTHETIC utterances (not GRID)")
            where = download_grid(root, None, tmp, progress=progress, echo=echo, folder=folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        where = download_grid(root, parse_speakers(speakers), from_dir, progress=progress,
                              echo=echo, folder=folder)
    return f"{name} is in {where}; next: plstm preprocess {name}"


def ensure_generated(cfg, progress: bool = True, echo=print) -> None:
    """A synthetic dataset that comes as files (synthetic-nmnist, synthetic-grid) is generated
    and preprocessed, offline, the first time a run needs it; real datasets are never fetched
    behind the user's back (``plstm download`` says where they come from)."""
    from .store import Store

    if cfg.name == "synthetic-nmnist":
        from .nmnist import SYNTHETIC
        stores = [SYNTHETIC.store_path(cfg.root, s) for s in ("train", "test")]
    elif cfg.name == "synthetic-grid":
        stores = [Path(cfg.root) / "SyntheticGRID" / "cache" / s for s in ("train", "test")]
    else:
        return
    if all(Store.exists(p) for p in stores):
        return
    echo(f"{cfg.name}: generating the SYNTHETIC recordings once (a few minutes)")
    download_dataset(cfg.name, cfg.root, progress=progress, echo=echo)
    preprocess_dataset(cfg.name, cfg.root, progress=progress, echo=echo)


__all__ = ["DATASETS", "SeqData", "check_dataset", "download_dataset", "ensure_generated",
           "load_split",
           "preprocess_dataset"]
