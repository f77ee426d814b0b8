"""Sequential 8x8 digits (offline stand-in for sequential MNIST)."""

import numpy as np
import pytest
import torch

from plstm_repro.data.digits import load_digits_seq


def test_shapes_and_values():
    d = load_digits_seq("train")
    n = len(d)
    assert d.x.shape == (n, 64, 1) and d.t.shape == (n, 64)
    assert d.x.dtype == torch.float32 and d.t.dtype == torch.float64
    assert d.y.dtype == torch.int64 and d.lengths.dtype == torch.int64
    assert torch.all(d.lengths == 64)
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    assert torch.equal(d.t[0], torch.arange(64, dtype=torch.float64))
    assert torch.equal(d.t[-1], d.t[0])
    assert d.task == "classification" and d.num_outputs == 10 and d.time_unit == "step"


def test_split_sizes_disjoint_stratified():
    from sklearn.datasets import load_digits

    tr, te = load_digits_seq("train", seed=3), load_digits_seq("test", seed=3)
    assert len(tr) + len(te) == 1797
    assert abs(len(te) - 0.2 * 1797) <= 1
    # disjoint: every image appears once over both splits
    imgs = load_digits().images.reshape(1797, 64) / 16.0
    both = torch.cat([tr.x[..., 0], te.x[..., 0]]).double().numpy()
    assert np.allclose(np.sort(both.sum(1)), np.sort(imgs.sum(1)))
    # stratified: each class's share in test matches the whole set within one sample
    full = np.bincount(load_digits().target, minlength=10)
    test = np.bincount(te.y.numpy(), minlength=10)
    assert np.all(np.abs(test - 0.2 * full) <= 1)


def test_seeded():
    a, b, c = (load_digits_seq("test", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_fraction_and_errors():
    assert len(load_digits_seq("test", test_fraction=0.5)) in (898, 899)
    with pytest.raises(ValueError, match="split"):
        load_digits_seq("val")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_seq("train", test_fraction=1.0)
