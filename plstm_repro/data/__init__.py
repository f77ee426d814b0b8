"""Dataset registry: name -> a loader of (DataConfig, split, seed) -> SeqData.

Loaders import their module lazily, so listing datasets costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from .base import SeqData

DATASETS = ("sines", "sines2", "adding", "mnist", "digits")

# The train and test sets of a run come from the run's seed; the offset keeps them disjoint.
_TEST_SEED_OFFSET = 1_000_003


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown {name!r}; valid: {', '.join(DATASETS)}")
    return name


def load_split(cfg, split: str, seed: int) -> SeqData:
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
    from .digits import load_digits_seq
    return load_digits_seq(split, seed=0)


__all__ = ["DATASETS", "SeqData", "check_dataset", "load_split"]
