"""The prefetching loader yields the very batches fit() builds in its own thread, in order."""

from __future__ import annotations

import pytest
import torch
from test_nmnist import write_tree

from plstm_repro.data.events import EventSplit
from plstm_repro.data.nmnist import download_nmnist, preprocess_nmnist
from plstm_repro.data.store import Store
from plstm_repro.loader import LoaderConfig, Prefetcher, rank_part
from plstm_repro.train import batches


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nmnist")
    write_tree(tmp / "src", per_digit=(3, 1), corrupt=False)
    download_nmnist(tmp / "data", from_dir=tmp / "src", progress=False, echo=lambda s: None)
    preprocess_nmnist(tmp / "data", progress=False, echo=lambda s: None)
    s = EventSplit(Store(tmp / "data" / "NMNIST" / "cache" / "train"), rho=0.75, seed=7,
                   train=True)
    s.set_epoch(3)  # a training epoch: events dropped with keys (7, 3, recording)
    return s


def in_thread(split, groups, rank, world, start=0):
    """What fit() does today, batch by batch."""
    out = []
    for i in range(start, len(groups)):
        part = rank_part(groups[i], rank, world)
        out.append((i, part, split.batch(part if len(part) else groups[i])))
    return out


def same(a, b):
    assert a[0] == b[0] and torch.equal(a[1], b[1])
    for f in ("x", "t", "lengths", "y"):
        assert torch.equal(getattr(a[2], f), getattr(b[2], f)), f


@pytest.mark.parametrize("rank, world, start, workers", [(0, 1, 0, 3), (1, 2, 2, 2),
                                                         (2, 3, 0, 1)])
def test_same_batches_in_the_same_order(split, rank, world, start, workers):
    gen = torch.Generator().manual_seed(11)
    groups = batches(len(split), 4, gen, split.lengths)  # bucketed, as fit with bucket on
    want = in_thread(split, groups, rank, world, start)
    got = list(Prefetcher(split, groups, "cpu", rank=rank, world=world, start=start,
                          config=LoaderConfig(workers=workers, ahead=3)))
    assert len(got) == len(want) == len(groups) - start
    for a, b in zip(got, want):
        same(a, b)
    assert any(len(p) == 0 for _, p, _ in got) == (world == 3 and len(groups[-1]) < 3)


def test_a_worker_error_reaches_the_loop_and_an_early_exit_stops(split):
    class Broken:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def batch(self, idx):
            self.calls += 1
            if int(idx[0]) == 5:
                raise ValueError("recording 5: bad")
            return self.inner.batch(idx)

    groups = [torch.tensor([i]) for i in range(8)]
    seen = []
    with pytest.raises(ValueError, match="recording 5"):
        for i, _, _ in Prefetcher(Broken(split), groups, config=LoaderConfig(workers=2, ahead=1)):
            seen.append(i)
    assert seen == [0, 1, 2, 3, 4]
    b = Broken(split)
    for i, _, _ in Prefetcher(b, groups, config=LoaderConfig(workers=1, ahead=1)):
        break
    assert b.calls <= 3  # the rest was never built


def test_bad_config():
    with pytest.raises(ValueError, match="workers >= 1"):
        LoaderConfig(workers=0)


def test_every_batch_kind_moves_whole_to_the_device():
    """The device copy (and pinning) maps every tensor field of the batch, whatever its kind
    names them: a GRID batch has video/audio streams, not x/t (it failed with AttributeError)."""
    import dataclasses

    from plstm_repro.data.grid_split import GridBatch
    from plstm_repro.loader import _to_device

    z = torch.zeros
    b = GridBatch(z(2, 3, 1, 48, 48), z(2, 3, dtype=torch.float64), torch.tensor([3, 2]),
                  z(2, 5, 39), z(2, 5, dtype=torch.float64), torch.tensor([5, 4]),
                  z(2, 2, dtype=torch.float64), torch.tensor([[1, 2], [3, -100]]))
    moved = _to_device(b, torch.device("meta"))
    for f in dataclasses.fields(GridBatch):
        v = getattr(moved, f.name)
        if isinstance(v, torch.Tensor):
            assert v.device.type == "meta" and v.shape == getattr(b, f.name).shape, f.name
    assert (moved.task, moved.num_outputs) == (b.task, b.num_outputs)
