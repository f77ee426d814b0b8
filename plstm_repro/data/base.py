"""What every dataset returns: padded inputs, timestamps per sample and step, lengths, targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

IGNORE = -100  # label of a padded word (cross-entropy's ignore_index)


@dataclass(frozen=True)
class SeqData:
    """A split of a sequence dataset, padded to its longest sequence.

    x [N, T, F] float32 (0 past each length), t [N, T] float64 timestamps (in ``time_unit``),
    lengths [N] int64 in [1, T], y [N] int64 class labels (classification) or float32 targets
    (regression, shape [N] or [N, D]).
    """

    x: Tensor
    t: Tensor
    lengths: Tensor
    y: Tensor
    task: str  # "classification" or "regression"
    num_outputs: int  # classes, or regression outputs
    time_unit: str = "ms"
    # the optional parts of the Split protocol (data/protocol.py): a padded split has none
    arch = None
    clocks = None
    sensor = None
    num_indices = 0
    digest = None

    def __post_init__(self):
        n = self.x.shape[0]
        if self.x.dim() != 3 or self.t.shape != self.x.shape[:2]:
            raise ValueError(f"SeqData: x [N, T, F] and t [N, T] disagree: "
                             f"{tuple(self.x.shape)} vs {tuple(self.t.shape)}")
        if self.lengths.shape != (n,) or self.y.shape[0] != n:
            raise ValueError("SeqData: lengths and y must have N = x.shape[0] rows")
        if self.task not in ("classification", "regression"):
            raise ValueError(f"SeqData: task must be classification or regression, got {self.task}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def input_size(self) -> int:
        return self.x.shape[-1]

    @property
    def inputs(self) -> tuple[Tensor, Tensor, Tensor]:
        """What a model's forward takes: (x, t, lengths)."""
        return self.x, self.t, self.lengths

    def set_epoch(self, epoch: int) -> None:
        """The same data every epoch."""

    def to(self, device) -> SeqData:
        if str(device) == "cpu" and self.x.device.type == "cpu":
            return self
        return SeqData(self.x.to(device), self.t.to(device), self.lengths.to(device),
                       self.y.to(device), self.task, self.num_outputs, self.time_unit)

    def batch(self, idx: Tensor) -> SeqData:
        """The rows idx, trimmed to the longest of them (less padding, faster steps)."""
        T = int(self.lengths[idx].max())
        return SeqData(self.x[idx, :T], self.t[idx, :T], self.lengths[idx], self.y[idx],
                       self.task, self.num_outputs, self.time_unit)


class FreshSplit:
    """A generated split drawn afresh every epoch, as the authors' code does for the frequency
    tasks (5000 new training and 500 new test samples per epoch): ``set_epoch(e)`` replaces the
    data with ``make(seed)`` for a seed keyed by (the split's seed, e), so a run is repeatable and
    a resumed run sees the same samples. Until the first ``set_epoch`` it holds epoch 1's draw.
    Everything else (``len``, ``lengths``, ``batch``, ``task``...) is the current SeqData's."""

    def __init__(self, make, seed: int):
        self._make, self.seed = make, int(seed)
        self.epoch = 0
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            key = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
            self.data = self._make(key)

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str):
        if name in ("data", "_make"):  # not set yet: no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.data, name)
