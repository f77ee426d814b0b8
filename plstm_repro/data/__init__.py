"""Dataset registry: name -> a loader of (DataConfig, split, seed) -> a split with the batch
interface of :class:`SeqData` (``len``, ``lengths``, ``batch(idx)``, ``task``, ``num_outputs``,
``input_size``), plus ``download`` and ``preprocess`` for the datasets that come from files.

Loaders import their module lazily, so listing datasets costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from .base import SeqData

DATASETS = ("sines", "sines2", "adding", "mnist", "digits", "nmnist", "synthetic-nmnist")
FROM_FILES = ("mnist", "nmnist", "synthetic-nmnist")  # need `plstm download` first

# The train and test sets of a run come from the run's seed; the offset keeps them disjoint.
_TEST_SEED_OFFSET = 1_000_003


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
        from .sines import make_sines
        return make_sines(n, s, sampling=cfg.sampling, superimposed=name == "sines2")
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
    from .digits import load_digits_seq
    return load_digits_seq(split, seed=0)


def download_dataset(name: str, root: Path | str = "data", from_dir: Path | None = None,
             progress: bool = True, echo=print) -> str:
    """``plstm download NAME``: fetch (or place, or generate) a dataset's files; returns where
    they are, in a sentence."""
    name = check_dataset(name)
    if name not in FROM_FILES:
        return f"{name} is generated from a seed (or bundled): nothing to download"
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
               echo=print) -> dict:
    """``plstm preprocess NAME`` for datasets from files: decode them once into caches."""
    name = check_dataset(name)
    if name in ("nmnist", "synthetic-nmnist"):
        from .nmnist import preprocess_nmnist
        return preprocess_nmnist(root, progress, echo, _nmnist_source(name))
    raise ValueError(f"preprocess: {name} needs no preprocessing")


def ensure_generated(cfg, progress: bool = True, echo=print) -> None:
    """A synthetic dataset that comes as files (synthetic-nmnist) is generated and
    preprocessed, offline, the first time a run needs it; real datasets are never fetched
    behind the user's back (``plstm download`` says where they come from)."""
    if cfg.name != "synthetic-nmnist":
        return
    from .nmnist import SYNTHETIC
    from .store import Store

    if all(Store.exists(SYNTHETIC.store_path(cfg.root, s)) for s in ("train", "test")):
        return
    echo(f"{cfg.name}: generating the SYNTHETIC recordings once (a few minutes)")
    download_dataset(cfg.name, cfg.root, progress=progress, echo=echo)
    preprocess_dataset(cfg.name, cfg.root, progress=progress, echo=echo)


__all__ = ["DATASETS", "SeqData", "check_dataset", "download_dataset", "ensure_generated",
           "load_split",
           "preprocess_dataset"]
