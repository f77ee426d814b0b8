"""Sequential 8x8 digits: the offline stand-in for sequential MNIST.

scikit-learn ships the UCI optical digits (1797 images of 8x8 pixels, values 0..16) inside the
package, so this needs no download. Each image becomes a 64-step sequence of pixels / 16 in raster
order with timestamps 0..63, the same layout as :func:`plstm_repro.data.mnist.load_mnist`
(784 steps). It exists for tests and quick offline checks; it is not a task of Neil et al. 2016
and its numbers are not comparable with MNIST results.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .base import SeqData

SPLITS = ("train", "test")


def load_digits_seq(split: str, seed: int = 0, test_fraction: float = 0.2) -> SeqData:
    """One split of the sequential 8x8 digits (offline stand-in for sequential MNIST).

    Args:
        split: ``"train"`` or ``"test"``.
        seed: seed of the stratified split (the same seed gives complementary train/test sets).
        test_fraction: share of the 1797 images in the test split, in (0, 1).

    Returns:
        ``SeqData`` with x [N, 64, 1] float32 = pixel / 16, t [N, 64] float64 = 0..63 (time unit
        "step"), lengths all 64, y int64 digits, classification with 10 outputs.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(map(repr, SPLITS))}, "
                        f"got split={split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    images = digits.images.astype(np.float64)
    labels = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           random_state=seed, stratify=labels)
    idx = idx_train if split == "train" else idx_test
    N = len(idx)
    steps = images.shape[1] * images.shape[2]
    x = (images[idx].reshape(N, steps, 1) / 16.0).astype(np.float32)
    t = np.broadcast_to(np.arange(steps, dtype=np.float64), (N, steps)).copy()
    return SeqData(
        x=torch.from_numpy(x),
        t=torch.from_numpy(t),
        lengths=torch.full((N,), steps, dtype=torch.int64),
        y=torch.from_numpy(labels[idx]),
        task="classification",
        num_outputs=10,
        time_unit="step",
    )


def load(cfg, split: str, n: int, seed: int) -> SeqData:
    """The registry's loader of ``digits``: one fixed split for every seed and size."""
    return load_digits_seq(split, seed=0)
