"""Adding task data (paper sec. 3.2)."""

import numpy as np
import pytest
import torch

from plstm_repro.data.adding import make_adding


def test_shapes_dtypes():
    d = make_adding(100, seed=0)
    n, T, F = d.x.shape
    assert (n, F) == (100, 2) and d.t.shape == (100, T)
    assert d.x.dtype == torch.float32 and d.t.dtype == torch.float64
    assert d.lengths.dtype == torch.int64 and d.y.dtype == torch.float32 and d.y.shape == (100,)
    assert d.task == "regression" and d.num_outputs == 1 and d.time_unit == "step"
    assert int(d.lengths.min()) >= 490 and int(d.lengths.max()) <= 510
    assert T == int(d.lengths.max())


def test_lengths_cover_range():
    d = make_adding(2000, seed=1, min_len=5, max_len=8)
    assert set(d.lengths.tolist()) == {5, 6, 7, 8}


def test_values_markers_target():
    d = make_adding(500, seed=2)
    for i in range(500):
        L = int(d.lengths[i])
        v, m = d.x[i, :L, 0], d.x[i, :L, 1]
        assert torch.all((v >= -0.5) & (v < 0.5))
        assert torch.all((m == 0) | (m == 1)) and int(m.sum()) == 2
        first, second = torch.nonzero(m).flatten().tolist()
        assert first < L / 10, (first, L)
        assert second >= L / 2, (second, L)
        assert d.y[i] == v[first] + v[second]
        assert torch.all(d.x[i, L:] == 0) and torch.all(d.t[i, L:] == 0)
        assert torch.equal(d.t[i, :L], torch.arange(L, dtype=torch.float64))


def test_marker_positions_uniform():
    d = make_adding(20000, seed=3, min_len=100, max_len=100)
    m = d.x[:, :, 1]
    first = m[:, :10].argmax(1).numpy()
    second = (m[:, 50:].argmax(1) + 50).numpy()
    assert set(np.unique(first)) == set(range(10))
    assert set(np.unique(second)) == set(range(50, 100))
    assert m[:, 10:50].sum() == 0
    counts = np.bincount(first, minlength=10)
    assert counts.min() > 0.8 * 2000 and counts.max() < 1.2 * 2000


def test_value_distribution():
    d = make_adding(200, seed=4)
    v = torch.cat([d.x[i, : int(d.lengths[i]), 0] for i in range(200)]).numpy()
    assert abs(v.mean()) < 0.01 and abs(v.var() - 1 / 12) < 0.005
    # target = sum of two U(-0.5, 0.5): in (-1, 1), variance 1/6
    assert float(d.y.abs().max()) < 1.0 and abs(float(d.y.var()) - 1 / 6) < 0.03


def test_short_sequences_edge():
    d = make_adding(50, seed=5, min_len=2, max_len=2)
    assert torch.all(d.x[:, 0, 1] == 1) and torch.all(d.x[:, 1, 1] == 1)
    assert torch.allclose(d.y, d.x[:, 0, 0] + d.x[:, 1, 0])


def test_deterministic_and_seeded():
    a, b, c = make_adding(20, seed=6), make_adding(20, seed=6), make_adding(20, seed=7)
    for f in ("x", "t", "lengths", "y"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.y, c.y)


@pytest.mark.parametrize("kw", [{"min_len": 1, "max_len": 5}, {"min_len": 10, "max_len": 9}])
def test_bad_lengths(kw):
    with pytest.raises(ValueError, match="min_len"):
        make_adding(5, seed=0, **kw)
