"""Event-camera splits behind the batch interface every dataset shares (``SeqData.batch``).

``fit()`` and ``evaluate()`` only ask a split for ``len``, ``lengths``, ``batch(idx)``, ``task``,
``num_outputs`` and ``input_size``. An :class:`EventSplit` answers them from a memory-mapped store
(:mod:`plstm_repro.data.store`), materialising only the recordings of one batch, padded to the
longest of them, so a split is never padded as a whole.

rho (Neil et al. 2016, sec. 3.3) is the probability that an event is kept (tonic's
``DropEvent``). It is applied when a batch is materialised, from a generator keyed by (seed,
epoch, recording): a run is repeatable and resumable, independent of how recordings are batched
or sharded, and the events kept at rho = 0.4 are a subset of those kept at 0.75 (the same
uniform draws, compared with rho). Training splits draw anew every epoch (``set_epoch``); test
splits use one fixed draw.

Each event becomes the input (pixel address y * 34 + x, polarity as -1/+1): the address indexes
the model's learned embedding (``SequenceModel(embed=...)``), 34 * 34 values. Timestamps are in
milliseconds (float64), relative to the recording's start as recorded: the paper states the time
constants in ms (tau = 100 ms for N-MNIST), and in ms the learned periods move by Adam steps of a
sensible size (in microseconds, tau ~ 1e5 would barely move at lr 1e-3).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .base import SeqData
from .store import Store

_TEST_EPOCH = 2 ** 31 - 1  # the fixed draw of test splits: never a training epoch


class EventSplit:
    """Recordings ``indices`` of an event store as a classification split."""

    task = "classification"
    time_unit = "ms"
    input_size = 2  # (pixel address, polarity)
    arch = None  # the Split protocol's optional parts this kind lacks
    clocks = None
    digest = None

    def __init__(self, store: Store, indices: np.ndarray | None = None, *, rho: float = 1.0,
                 seed: int = 0, train: bool = False, num_outputs: int = 10,
                 sensor: tuple[int, int] = (34, 34), name: str = ""):
        if not 0.0 < rho <= 1.0:
            raise DataError(f"data.rho: expected the probability of keeping an event in "
                            f"(0, 1], got {rho}")
        self.store, self.rho, self.seed, self.train = store, float(rho), int(seed), train
        self.indices = (np.arange(len(store)) if indices is None
                        else np.asarray(indices, dtype=np.int64))
        self.num_outputs, self.sensor, self.name = num_outputs, sensor, name
        self.num_indices = sensor[0] * sensor[1]
        self.epoch = _TEST_EPOCH
        self.lengths = torch.from_numpy(store.lengths("events")[self.indices].astype(np.int64))
        self.y = torch.from_numpy(store.records["label"][self.indices].astype(np.int64))

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Training splits drop a fresh set of events each epoch (test splits: always the same)."""
        if self.train:
            self.epoch = int(epoch)

    def keep_mask(self, recording: int, n: int) -> np.ndarray:
        """Which of a recording's ``n`` events survive rho, from its own keyed generator."""
        if self.rho >= 1.0:
            return np.ones(n, dtype=bool)
        rng = np.random.default_rng([self.seed, self.epoch, int(recording)])
        keep = rng.random(n) < self.rho
        if not keep.any():  # a sequence needs one step: keep the first event
            keep[0] = True
        return keep

    def batch(self, idx) -> SeqData:
        """The rows ``idx`` (positions in this split), events dropped with rho, padded to the
        longest of them: x [B, T, 2] float32 (address, polarity), t [B, T] float64 ms."""
        idx = torch.as_tensor(idx).reshape(-1).tolist()
        recs = [int(self.indices[i]) for i in idx]
        ev = {f: np.concatenate(v) for f, v in self.store.gather("events", recs).items()}
        sizes = self.lengths[idx].numpy() if len(idx) else np.zeros(0, np.int64)
        keep = np.concatenate([self.keep_mask(r, int(n)) for r, n in zip(recs, sizes)])
        # every field of the whole batch at once, then one contiguous slice per row
        addr = (ev["y"].astype(np.float32) * self.sensor[0] + ev["x"])[keep]
        pol = (2.0 * ev["p"].astype(np.float32) - 1.0)[keep]
        ms = ev["t"][keep] * 1e-3
        lengths = np.add.reduceat(keep, np.r_[0, np.cumsum(sizes)[:-1]]).astype(np.int64) \
            if len(sizes) else np.zeros(0, np.int64)
        ends = np.cumsum(lengths)
        B, T = len(recs), int(lengths.max())
        x = np.zeros((B, T, 2), dtype=np.float32)
        t = np.zeros((B, T), dtype=np.float64)
        for b, (e, n) in enumerate(zip(ends, lengths)):
            x[b, :n, 0], x[b, :n, 1], t[b, :n] = addr[e - n:e], pol[e - n:e], ms[e - n:e]
        return SeqData(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(lengths),
                       self.y[idx], self.task, self.num_outputs, self.time_unit)


def stratified_subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """``n`` positions with the classes in proportion (seeded), sorted; all when n is None or
    at least the size."""
    N = len(labels)
    if n is None or n >= N:
        return np.arange(N)
    if n < 1:
        raise DataError(f"subset: expected n >= 1, got {n}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * n / N
    take = np.floor(share).astype(int)
    for k in np.argsort(-(share - take))[: n - take.sum()]:  # largest remainders
        take[k] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, take) if k]
    return np.sort(np.concatenate(picked))
