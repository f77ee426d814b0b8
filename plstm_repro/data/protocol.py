"""What training and evaluation read from a split, declared once: :class:`Split`.

Every split kind (:class:`~.base.SeqData`, :class:`~.base.FreshSplit`,
:class:`~.events.EventSplit`, :class:`~.grid_split.GridSplit`) has every member, the optional
ones included: a kind without the part holds the default (``None``, ``0``, a no-op
``set_epoch``), so that callers read attributes instead of probing with ``hasattr``. The
defaults are class attributes, not instance ones, so that a split's ``vars`` (part of a
store-backed split's digest in :func:`plstm_repro.tracking.describe_split`) do not change.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Split(Protocol):
    """A train or test split as ``fit``/``evaluate`` read it."""

    task: str  # "classification" or "regression"
    num_outputs: int  # classes, or regression outputs
    time_unit: str  # of the timestamps: "ms" or "step"
    # the optional parts (None / 0 where a kind has none):
    arch: str | None  # a model the batches need, built around the cell ("grid_fusion")
    clocks: dict | None  # {stream: (period, origin) ms}: the streams' sampling grids (GRID)
    sensor: tuple[int, int] | None  # an event sensor's (width, height) (N-MNIST)
    num_indices: int  # size of an index feature a model may embed; 0: none
    digest: str | None  # a loader's own digest of the split; None: describe_split hashes it

    def __len__(self) -> int: ...

    @property
    def lengths(self) -> Any: ...  # [N] int64 tensor

    @property
    def input_size(self) -> int: ...

    def batch(self, idx) -> Any: ...  # the rows idx, as a batch the model's forward takes

    def set_epoch(self, epoch: int) -> None: ...  # data that change every epoch; else no-op
