"""Adding task (Neil et al. 2016, sec. 3.2, Fig. 4b; after Hochreiter & Schmidhuber 1997).

Each sequence has a length L ~ U{min_len, ..., max_len} (490 to 510 in the paper) and values drawn
from U(-0.5, 0.5). Two steps are marked: one drawn uniformly from the first 10% of the sequence
(steps i < L / 10) and one drawn uniformly from the last half (steps i >= L / 2). The input at each
step is (value, marker) with marker 1 at the two marked steps and 0 elsewhere; the target is the
sum of the two marked values, learned with the mean squared error.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .base import SeqData


def make_adding(n: int, seed: int, min_len: int = 490, max_len: int = 510) -> SeqData:
    """Adding-task data of sec. 3.2.

    Args:
        n: number of sequences.
        seed: seed of this call's own ``numpy.random.Generator`` (no global state is touched).
        min_len, max_len: sequence lengths are drawn uniformly from {min_len, ..., max_len}
            (both included); min_len must be at least 2.

    Returns:
        ``SeqData`` with x [n, T, 2] float32 = (value, marker) (zero past each length), t [n, T]
        float64 = step index 0 .. L-1 (zero past each length, time unit "step"), lengths int64,
        y float32 [n] = sum of the two marked values, task "regression", 1 output.
    """
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    if not 2 <= min_len <= max_len:
        raise DataError(f"need 2 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)

    lengths = rng.integers(min_len, max_len, n, endpoint=True).astype(np.int64)
    T = int(lengths.max())
    steps = np.arange(T)
    valid = steps[None, :] < lengths[:, None]
    values = rng.uniform(-0.5, 0.5, (n, T)).astype(np.float32)
    values[~valid] = 0.0

    first_hi = (lengths + 9) // 10  # number of steps i with i < L / 10 (at least 1)
    second_lo = (lengths + 1) // 2  # first step i with i >= L / 2
    first = rng.integers(0, first_hi)
    second = rng.integers(second_lo, lengths)
    rows = np.arange(n)
    marker = np.zeros((n, T), dtype=np.float32)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]

    x = np.stack([values, marker], axis=-1)
    t = np.where(valid, steps[None, :].astype(np.float64), 0.0)
    return SeqData(
        x=torch.from_numpy(x),
        t=torch.from_numpy(t),
        lengths=torch.from_numpy(lengths),
        y=torch.from_numpy(y.astype(np.float32)),
        task="regression",
        num_outputs=1,
        time_unit="step",
    )


def load(cfg, split: str, n: int, seed: int) -> SeqData:
    """The registry's loader of ``adding``."""
    return make_adding(n, seed, min_len=cfg.min_len, max_len=cfg.max_len)
