"""Frequency discrimination data (paper sec. 3.1, Fig. 3 and Fig. 4a)."""

import time

import numpy as np
import pytest
import torch

from plstm_repro.data.sines import (
    CLASS0_T1,
    CLASS0_T2,
    make_sines,
    make_sines_authors,
    uniform_union,
)


def _valid(d, i):
    L = int(d.lengths[i])
    return d.t[i, :L].numpy(), d.x[i, :L, 0].numpy(), L


@pytest.mark.parametrize("sampling", ["standard", "highres", "async"])
def test_shapes_dtypes(sampling):
    d = make_sines(64, seed=0, sampling=sampling)
    n, T, F = d.x.shape
    assert (n, F) == (64, 1)
    assert d.t.shape == (64, T)
    assert d.x.dtype == torch.float32 and d.t.dtype == torch.float64
    assert d.lengths.dtype == torch.int64 and d.y.dtype == torch.int64
    assert d.task == "classification" and d.num_outputs == 2 and d.time_unit == "ms"
    assert int(d.lengths.max()) == T and int(d.lengths.min()) >= 1
    assert set(d.y.tolist()) <= {0, 1}
    # zero past each length
    for i in range(64):
        L = int(d.lengths[i])
        assert torch.all(d.x[i, L:] == 0) and torch.all(d.t[i, L:] == 0)


@pytest.mark.parametrize("sampling", ["standard", "highres", "async"])
def test_times_in_window_and_increasing(sampling):
    d = make_sines(200, seed=1, sampling=sampling)
    for i in range(200):
        t, _, L = _valid(d, i)
        if L > 1:
            assert np.all(np.diff(t) > 0)
        assert t[0] >= 0 and t[-1] < 125.0


@pytest.mark.parametrize("sampling,step", [("standard", 1.0), ("highres", 0.1)])
def test_regular_spacing(sampling, step):
    d = make_sines(100, seed=2, sampling=sampling)
    for i in range(100):
        t, _, _ = _valid(d, i)
        assert np.allclose(np.diff(t), step, atol=1e-9)


def test_counts_match_durations():
    """standard: ceil(duration) points; highres 10x; async as many as standard."""
    std = make_sines(300, seed=3, sampling="standard")
    hi = make_sines(300, seed=3, sampling="highres")
    asy = make_sines(300, seed=3, sampling="async")
    assert torch.equal(std.lengths, asy.lengths)
    assert torch.equal(std.y, hi.y) and torch.equal(std.y, asy.y)
    ratio = hi.lengths.double() / std.lengths.double()
    assert torch.all((ratio > 9.0) & (ratio <= 10.0))
    # durations U(15, 125) ms -> 15..125 standard points
    assert int(std.lengths.min()) >= 15 and int(std.lengths.max()) <= 125
    # same starts: first sample times agree for standard and highres
    assert torch.allclose(std.t[:, 0], hi.t[:, 0])
    # async times lie in [start, start + duration) where standard also starts at start
    for i in range(300):
        L = int(std.lengths[i])
        assert asy.t[i, 0] >= std.t[i, 0]
        assert asy.t[i, L - 1] < std.t[i, 0] + L  # duration <= L = ceil(duration)


def test_async_times_are_irregular():
    d = make_sines(50, seed=4, sampling="async")
    t, _, _ = _valid(d, 0)
    assert np.std(np.diff(t)) > 0.05


def test_signal_matches_periods():
    d, periods = make_sines(100, seed=5, return_periods=True)
    assert periods.shape == (100,)
    for i in range(100):
        t, x, _ = _valid(d, i)
        # x = sin(2 pi t / T + phase): recover the phase from the first sample and check the rest
        ph0 = np.arcsin(np.clip(x[0], -1, 1)) - 2 * np.pi * t[0] / periods[i]
        ph1 = np.pi - np.arcsin(np.clip(x[0], -1, 1)) - 2 * np.pi * t[0] / periods[i]
        errs = [np.abs(np.sin(2 * np.pi * t / periods[i] + ph) - x).max() for ph in (ph0, ph1)]
        assert min(errs) < 1e-4
        assert np.all(np.abs(x) <= 1.0)


def test_periods_in_range():
    d, p = make_sines(4000, seed=6, return_periods=True)
    y = d.y.numpy()
    assert np.all((p[y == 1] >= 5) & (p[y == 1] <= 6))
    p0 = p[y == 0]
    assert np.all((p0 >= 1) & (p0 <= 100))
    assert not np.any((p0 > 5) & (p0 < 6))
    # uniform over the union: P(U(1, 5) piece) = 4 / 98
    frac = np.mean(p0 < 5)
    assert abs(frac - 4 / 98) < 0.02


def test_superimposed_periods():
    d, p = make_sines(4000, seed=7, superimposed=True, return_periods=True)
    assert p.shape == (4000, 2)
    y = d.y.numpy()
    assert np.all((p[y == 1, 0] >= 5) & (p[y == 1, 0] <= 6))
    assert np.all((p[y == 1, 1] >= 13) & (p[y == 1, 1] <= 15))
    p0 = p[y == 0]
    assert not np.any((p0[:, 0] > 5) & (p0[:, 0] < 6))
    assert not np.any((p0[:, 1] > 13) & (p0[:, 1] < 15))
    assert np.all((p0 >= 1) & (p0 <= 100))
    # the signal is the mean of two sines with these periods: a least-squares fit on
    # sin/cos of both periods leaves no residual and gives amplitude 1/2 for each
    assert float(d.x.abs().max()) <= 1.0
    for i in range(20):
        t, x, _ = _valid(d, i)
        w = 2 * np.pi / p[i]
        basis = np.stack([f(wk * t) for wk in w for f in (np.sin, np.cos)], 1)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        assert np.abs(basis @ coef - x).max() < 1e-4
        assert np.allclose([np.hypot(*coef[:2]), np.hypot(*coef[2:])], 0.5, atol=1e-3)


def test_uniform_union():
    rng = np.random.default_rng(0)
    v = uniform_union(rng, CLASS0_T2, 100000)
    assert v.min() >= 1 and v.max() <= 100 and not np.any((v > 13) & (v < 15))
    assert abs(np.mean(v < 13) - 12 / 97) < 0.01
    v = uniform_union(rng, CLASS0_T1, 10)
    assert v.shape == (10,)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_balanced(n):
    d = make_sines(n, seed=8)
    assert int(d.y.sum()) == n // 2


def test_labels_shuffled():
    y = make_sines(100, seed=9).y
    assert not torch.equal(y, y.sort().values)
    assert not torch.equal(y, y.sort(descending=True).values)


@pytest.mark.parametrize("sampling", ["standard", "highres", "async"])
@pytest.mark.parametrize("superimposed", [False, True])
def test_deterministic(sampling, superimposed):
    a = make_sines(50, seed=10, sampling=sampling, superimposed=superimposed)
    b = make_sines(50, seed=10, sampling=sampling, superimposed=superimposed)
    c = make_sines(50, seed=11, sampling=sampling, superimposed=superimposed)
    for f in ("x", "t", "lengths", "y"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.lengths, c.lengths)
    assert not (a.x.shape == c.x.shape and torch.equal(a.x, c.x))


def test_no_global_rng_use():
    np.random.seed(0)
    torch.manual_seed(0)
    before = (np.random.random(), torch.rand(1).item())
    np.random.seed(0)
    torch.manual_seed(0)
    make_sines(10, seed=0, sampling="async")
    assert (np.random.random(), torch.rand(1).item()) == before


def test_bad_sampling():
    with pytest.raises(ValueError, match="sampling") as e:
        make_sines(10, seed=0, sampling="fast")
    for v in ("standard", "highres", "async"):
        assert v in str(e.value)


def test_highres_speed():
    t0 = time.perf_counter()
    d = make_sines(5000, seed=0, sampling="highres")
    assert time.perf_counter() - t0 < 5.0  # about 1 s expected; loose bound for slow CI
    assert d.x.shape[1] <= 1250


# --- the authors' generator (public_plstm freq_task.py) --------------------------------------

def _fit_sines(t, x, omegas):
    """Least squares of x on sin / cos of each omega * t: (residual, amplitudes)."""
    cols = []
    for w in omegas:
        cols += [np.sin(w * t), np.cos(w * t)]
    A = np.stack(cols, 1)
    coef, *_ = np.linalg.lstsq(A, x, rcond=None)
    amps = [np.hypot(coef[2 * k], coef[2 * k + 1]) for k in range(len(omegas))]
    return float(np.abs(A @ coef - x).max()), amps


@pytest.mark.parametrize("sampling", ["standard", "highres", "async"])
def test_authors_generator(sampling):
    d, periods = make_sines_authors(256, seed=3, sampling=sampling, return_periods=True)
    special = (np.arange(256) % 32) < 16  # the first half of each batch of 32
    assert ((periods[special] >= 5) & (periods[special] <= 6)).all()
    rest = periods[~special]
    assert rest.min() >= 1 and rest.max() <= 100 and np.median(rest) < 20  # log-uniform
    assert (d.y.numpy() == ((periods >= 5) & (periods <= 6))).all()
    L = d.lengths.numpy()
    if sampling == "async":
        assert L.min() >= 15 and L.max() <= 124  # int(U(15, 125)), whatever the duration
    for i in range(0, 256, 17):
        t, x, _ = _valid(d, i)
        assert 0 <= t[0] and t[-1] <= 125 and (np.diff(t) >= 0).all()
        if sampling != "async":
            step = 1.0 if sampling == "standard" else 0.1
            assert np.allclose(np.diff(t), step)
        # sin(2 pi t / T - s): a unit sinusoid at 2 pi / T (their wave has the 2 pi)
        res, (amp,) = _fit_sines(t, x.astype(np.float64), [2 * np.pi / periods[i]])
        assert res < 1e-5 and amp == pytest.approx(1.0, abs=1e-5)


def test_authors_superimposed_generator_has_no_two_pi():
    d, p = make_sines_authors(96, seed=1, sampling="async", superimposed=True,
                              return_periods=True)
    special = (np.arange(96) % 32) < 16
    assert ((p[special, 0] >= 5) & (p[special, 0] <= 6)).all()
    assert ((p[special, 1] >= 13) & (p[special, 1] <= 15)).all()
    both = (p[:, 0] >= 5) & (p[:, 0] <= 6) & (p[:, 1] >= 13) & (p[:, 1] <= 15)
    assert (d.y.numpy() == both).all()
    assert d.lengths.min() >= 100 and d.lengths.max() <= 999
    for i in (0, 20, 40, 70):
        t, x, _ = _valid(d, i)
        assert t[-1] <= 100
        # sin(t / T1 - s1) + sin(t / T2 - s2): unit sinusoids at 1 / T, not 2 pi / T
        res, amps = _fit_sines(t, x.astype(np.float64), [1 / p[i, 0], 1 / p[i, 1]])
        assert res < 1e-4 and amps == pytest.approx([1.0, 1.0], abs=1e-4)
    with pytest.raises(ValueError, match="asynchronous only"):
        make_sines_authors(8, 0, sampling="standard", superimposed=True)


def test_fresh_split_draws_per_run_and_epoch():
    from plstm_repro.config import DataConfig
    from plstm_repro.data import load_split

    cfg = DataConfig(name="sines", n_train=64, n_test=32, protocol="authors", fresh=True)
    a, b = load_split(cfg, "train", 0), load_split(cfg, "train", 0)
    assert len(a) == 64 and a.input_size == 1 and a.task == "classification"
    first = a.x.clone()
    assert torch.equal(first, b.x)  # repeatable
    a.set_epoch(2)
    assert not torch.equal(a.x[:, :5], first[:, :5])  # new samples every epoch
    b.set_epoch(2)
    assert torch.equal(a.x, b.x) and torch.equal(a.lengths, b.lengths)
    a.set_epoch(1)
    assert torch.equal(a.x, first)  # epoch 1 again: the same draw (a resumed run)
    other = load_split(cfg, "train", 1)
    assert not torch.equal(other.x[:, :5], first[:, :5])  # another seed, another draw
    test = load_split(cfg, "test", 0)
    assert not torch.equal(test.x[:32, :5], first[:32, :5])
    with pytest.raises(ValueError, match="data.fresh"):
        load_split(DataConfig(name="adding", n_train=4, fresh=True), "train", 0)
    with pytest.raises(ValueError, match="data.protocol"):
        load_split(DataConfig(name="sines", n_train=4, protocol="theirs"), "train", 0)


def test_fit_draws_fresh_train_and_test_data_each_epoch(monkeypatch, tmp_path):
    from plstm_repro import train
    from plstm_repro.config import RunConfig, apply_overrides

    made = []

    def spy(cfg, split, seed):
        made.append(load(cfg, split, seed))
        return made[-1]

    load = train.load_split
    monkeypatch.setattr(train, "load_split", spy)
    cfg = apply_overrides(RunConfig(), {"data.fresh": True, "data.protocol": "authors",
                                        "data.n_train": 16, "data.n_test": 8,
                                        "model.hidden_size": 4, "train.epochs": 3})
    train.fit(cfg, root=tmp_path, progress=False)
    assert [s.epoch for s in made] == [3, 3]  # train and test both at the last epoch's draw
