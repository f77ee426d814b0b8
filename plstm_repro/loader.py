"""Batches materialised off the training thread, in the order the training loop asks for them.

The training loop today materialises each batch in its own thread, between two optimiser steps:
``train_set.batch(part).to(device)`` with ``part`` this rank's share of the index group (see
``train.fit``). :class:`Prefetcher` yields exactly those batches, in the same order, but builds
the next ``ahead`` of them in worker threads while the model trains on the current one (event
splits gather recordings from a memory-mapped store and drop events with numpy, which releases
the GIL), pins them on CUDA and copies them to the device without blocking.

Determinism: a batch is a function of (the split's seed and epoch, the recordings' indices)
only, as ``EventSplit.batch`` and ``SeqData.batch`` are (their randomness is keyed by
(seed, epoch, recording)), never of which thread builds it or when; the epoch must be set
(``set_epoch``) before iterating, as ``fit`` does. Threads rather than processes: the splits
hold memory maps and generators that need not be pickled, and a worker's exception reaches the
loop as it is, at the batch that raised it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


def rank_part(idx: Tensor, rank: int, world: int) -> Tensor:
    """This rank's rows of the global batch ``idx`` (as ``fit`` splits it); may be empty."""
    return idx if world == 1 else idx.tensor_split(world)[rank]


@dataclass(frozen=True)
class LoaderConfig:
    """``workers`` threads build up to ``ahead`` batches beyond the one in use; ``pin``: page-
    locked host copies (None: when the device is CUDA) so the copy to the GPU is asynchronous."""

    workers: int = 2
    ahead: int = 2
    pin: bool | None = None

    def __post_init__(self):
        if self.workers < 1 or self.ahead < 1:
            raise ValueError(f"loader: expected workers >= 1 and ahead >= 1, got "
                             f"{self.workers} and {self.ahead}")


def _map_tensors(b, fn):
    """The batch ``b`` (a dataclass: SeqData, GridBatch, ...) with ``fn`` applied to every
    tensor field, whatever the batch kind names them."""
    return replace(b, **{f.name: fn(getattr(b, f.name)) for f in fields(b)
                         if isinstance(getattr(b, f.name), Tensor)})


def _materialise(split, rows: Tensor, pin: bool):
    b = split.batch(rows)
    return _map_tensors(b, Tensor.pin_memory) if pin else b


def _to_device(b, device: torch.device):
    if device.type == "cpu":
        return b
    return _map_tensors(b, lambda v: v.to(device, non_blocking=True))


class Prefetcher:
    """Iterate ``(i, part, batch)`` for i in ``range(start, len(groups))``: ``part`` this rank's
    rows of ``groups[i]`` and ``batch`` = ``split.batch(part if len(part) else groups[i])`` on
    ``device``, the batch ``fit`` builds at step i. Leaving the loop early (break, exception)
    cancels the batches not started and waits for those running."""

    def __init__(self, split, groups: Sequence[Tensor], device: torch.device | str = "cpu", *,
                 rank: int = 0, world: int = 1, start: int = 0,
                 config: LoaderConfig = LoaderConfig()):
        self.split, self.groups = split, list(groups)
        self.device = torch.device(device)
        self.rank, self.world, self.start, self.config = rank, world, start, config
        pin = config.pin if config.pin is not None else self.device.type == "cuda"
        self.pin = bool(pin) and torch.cuda.is_available()  # pinning needs a CUDA runtime

    def __len__(self) -> int:
        return max(0, len(self.groups) - self.start)

    def _rows(self, i: int) -> tuple[Tensor, Tensor]:
        part = rank_part(self.groups[i], self.rank, self.world)
        return part, (part if len(part) else self.groups[i])

    def __iter__(self) -> Iterator[tuple[int, Tensor, object]]:
        pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="plstm-loader")
        pending: deque = deque()
        nxt = self.start
        try:
            while nxt < len(self.groups) or pending:
                while nxt < len(self.groups) and len(pending) <= self.config.ahead:
                    part, rows = self._rows(nxt)
                    pending.append((nxt, part, pool.submit(_materialise, self.split, rows,
                                                           self.pin)))
                    nxt += 1
                i, part, fut = pending.popleft()
                yield i, part, _to_device(fut.result(), self.device)
        finally:
            for _, _, fut in pending:
                fut.cancel()
            pool.shutdown(wait=True)
