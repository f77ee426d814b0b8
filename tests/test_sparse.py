"""Sparse event-driven inference equals the dense eval forward, and counts the updates."""

from __future__ import annotations

import pytest
import torch

from plstm_repro.cells import _ext
from plstm_repro.cells.phased_lstm import PhasedLSTM
from plstm_repro.cells.sparse import count_updates, sparse_forward


def needs_ext():
    if _ext.load_extension() is None:
        pytest.skip("C++ kernels unavailable")


def case(dtype=torch.float32, num_layers=2, B=3, T=150, H=20):
    torch.manual_seed(0)
    model = PhasedLSTM(3, H, num_layers=num_layers, tau_init=(0.0, 2.0), dtype=dtype).eval()
    g = torch.Generator().manual_seed(1)
    t = 1e8 + torch.cumsum(torch.rand(B, T, generator=g, dtype=torch.float64) * 0.1, 1)
    x = torch.randn(B, T, 3, generator=g, dtype=dtype)
    return model, x, t


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_equals_dense_eval(dtype):
    needs_ext()
    model, x, t = case(dtype)
    lengths = torch.tensor([150, 40, 99])
    state = tuple(torch.randn(2, 3, 20, dtype=dtype) for _ in range(2))
    with torch.no_grad():
        ref, (h, c) = model(x, t, state, lengths)
    out, (h2, c2), upd = sparse_forward(model, x, t, state, lengths)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in ((out, ref), (h2, h), (c2, c)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    assert upd.shape == (2, 20)
    torch.testing.assert_close(upd, count_updates(model, t, lengths))


@pytest.mark.parametrize("bias,H", [(False, 20), (True, 13)])
def test_sparse_bias_column(bias, H):
    """The packed rows carry b as an extra column of [h | x | 1]: no bias at all, and H + F = 16
    (a whole vector), where the bias's column starts a new vector."""
    needs_ext()
    torch.manual_seed(0)
    model = PhasedLSTM(3, H, num_layers=2, bias=bias, tau_init=(0.0, 2.0)).eval()
    g = torch.Generator().manual_seed(1)
    t = 1e8 + torch.cumsum(torch.rand(2, 100, generator=g, dtype=torch.float64) * 0.1, 1)
    x = torch.randn(2, 100, 3, generator=g)
    with torch.no_grad():
        ref, (h, c) = model(x, t)
    out, (h2, c2), _ = sparse_forward(model, x, t)
    for a, b in ((out, ref), (h2, h), (c2, c)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_sparse_two_threads_split_the_batch():
    """5 samples over 2 threads (2 + 3): outputs and the summed update counts are unchanged."""
    needs_ext()
    model, x, t = case(B=5, T=120)
    lengths = torch.tensor([120, 40, 99, 1, 120])
    with torch.no_grad():
        ref, (h, c) = model(x, t, lengths=lengths)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out, (h2, c2), upd = sparse_forward(model, x, t, lengths=lengths)
    finally:
        torch.set_num_threads(threads)
    for a, b in ((out, ref), (h2, h), (c2, c)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(upd, count_updates(model, t, lengths))


def test_sparse_time_major_and_single_layer():
    needs_ext()
    torch.manual_seed(2)
    model = PhasedLSTM(2, 9, batch_first=False).eval()
    x, t = torch.randn(30, 2, 2), torch.cumsum(torch.rand(30, 2, dtype=torch.float64), 0)
    with torch.no_grad():
        ref, _ = model(x, t)
    out, _, _ = sparse_forward(model, x, t)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_count_updates_hand_computed():
    """Integer times 0..999 (two samples, the second 600 steps long), shifts chosen so that no
    phase sits on a branch point: phi = ((t - s) mod tau) / tau, and k > 0 only on the open
    ramp 0 < phi < r_on = 0.05, i.e. (t - s) mod tau < tau / 20.
    tau 100, s 0.5: (t - s) mod 100 in {0.5, ..., 4.5} < 5 -> t mod 100 in 1..5: 50 of 1000
    steps, 30 of 600; tau 50, s 0.25: {0.75, 1.75} < 2.5 -> t mod 50 in 1..2: 40 and 24;
    tau 200, s 7.5: t mod 200 in 8..17: 50 and 30; tau 30, s 0.25: 0.75 < 1.5 -> t mod 30 = 1,
    t = 1, 31, ..., 991: 34, and t <= 571: 20."""
    model = PhasedLSTM(1, 4).eval()
    with torch.no_grad():
        model.tau_l0.copy_(torch.tensor([100.0, 50.0, 200.0, 30.0]))
        model.shift_l0.copy_(torch.tensor([0.5, 0.25, 7.5, 0.25]))
    want = torch.tensor([[(50 + 30) / 2, (40 + 24) / 2, (50 + 30) / 2, (34 + 20) / 2]],
                        dtype=torch.float64)
    t = torch.arange(1000, dtype=torch.float64).expand(2, 1000)
    upd = count_updates(model, t, torch.tensor([1000, 600]))
    torch.testing.assert_close(upd, want)
    if _ext.load_extension() is not None:  # the sparse kernel counts the same steps
        x = torch.randn(2, 1000, 1)
        _, _, upd_kernel = sparse_forward(model, x, t, lengths=torch.tensor([1000, 600]))
        torch.testing.assert_close(upd_kernel, want)


def test_count_updates_matches_numpy_oracle():
    from reference_numpy import gate_np

    model, _, t = case(num_layers=2, B=2, T=3000, H=30)
    lengths = torch.tensor([3000, 1234])
    upd = count_updates(model, t, lengths)
    want = torch.zeros(2, 30, dtype=torch.float64)
    for k in range(2):
        p = {n: getattr(model, f"{n}_l{k}").detach().double().numpy()
             for n in ("tau", "shift", "r_on")}
        for b, L in enumerate(lengths.tolist()):
            for n in range(L):
                want[k] += torch.from_numpy(gate_np(t[b, n].item(), p["tau"], p["shift"],
                                                    p["r_on"], 0.0) > 0) / 2
    torch.testing.assert_close(upd, want)
    # about r_on of the steps are open when events are dense compared with the periods
    assert 0.03 < upd.mean().item() / ((3000 + 1234) / 2) < 0.07


def test_step_streaming_equals_forward():
    needs_ext()
    model, x, t = case(B=1, T=60)
    with torch.no_grad():
        ref, (h, c) = model(x, t)
        state, outs = None, []
        for n in range(60):
            y, state = model.step(x[:, n], t[:, n], state)
            outs.append(y)
    torch.testing.assert_close(torch.stack(outs, 1), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state[0], h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state[1], c, rtol=1e-5, atol=1e-5)


def test_chunked_sparse_equals_whole():
    needs_ext()
    model, x, t = case()
    whole, (h, c), upd = sparse_forward(model, x, t)
    a, st, ua = sparse_forward(model, x[:, :70], t[:, :70])
    b, (h2, c2), ub = sparse_forward(model, x[:, 70:], t[:, 70:], st)
    torch.testing.assert_close(torch.cat([a, b], 1), whole)
    torch.testing.assert_close((h2, c2), (h, c))
    torch.testing.assert_close(ua + ub, upd)


def test_step_in_train_mode_keeps_the_leak():
    """In train() a step goes through the dense path with alpha > 0 (the sparse kernel would
    treat closed neurons as frozen): it equals the NumPy oracle with the leak."""
    from reference_numpy import layers_of, plstm_np

    model, x, t = case(B=2, T=6, num_layers=2)
    model.leak = 0.2  # large, so that a leak dropped anywhere shows
    model.train()
    state, outs = None, []
    with torch.no_grad():
        for n in range(6):
            y, state = model.step(x[:, n], t[:, n], state)
            outs.append(y)
    r_out, r_h, r_c = plstm_np(x.double().numpy(), t.numpy(), [6, 6], layers_of(model), 0.2)
    torch.testing.assert_close(torch.stack(outs, 1).double(), torch.from_numpy(r_out),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state[0].double(), torch.from_numpy(r_h), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state[1].double(), torch.from_numpy(r_c), rtol=1e-5, atol=1e-5)
    eval_out = sparse_forward(model.eval(), x, t)[0] if _ext.load_extension() else None
    if eval_out is not None:  # and without the leak the outputs differ: the test can tell
        assert not torch.allclose(eval_out, torch.stack(outs, 1), atol=1e-3)


def test_errors():
    model, x, t = case()
    with pytest.raises(ValueError, match="eval"):
        sparse_forward(model.train(), x, t)
    with pytest.raises(ValueError, match="PhasedLSTM"):
        sparse_forward(torch.nn.LSTM(3, 4), x, t)
    with pytest.raises(ValueError, match="x_t"):
        model.step(x, t[:, 0])
    with pytest.raises(ValueError, match="t_t"):
        model.step(x[:, 0], t[:2, 0])
