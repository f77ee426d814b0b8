"""The recurrent core against the paper's equations, nn.LSTM/nn.GRU, and its own invariants."""

import numpy as np
import pytest
import torch
from reference_numpy import layers_of, plstm_np

from plstm_repro.cells import BNLSTM, LSTM, PhasedGRU, PhasedLSTM, time_gate


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def irregular_times(B, T, offset=0.0, seed=0):
    """Sorted random float64 timestamps with per-sample large offsets."""
    g = gen(seed)
    dt = torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    return offset * torch.rand(B, 1, generator=g, dtype=torch.float64) + dt.cumsum(1)


# --- time gate, eq. 6 ---------------------------------------------------------------------------

@pytest.mark.parametrize("t, expected", [
    (2.5, 0.5),        # phi = 0.05 < r_on/2: rising, 2 * 0.05 / 0.2
    (3.0, 1.0),        # phi = 0.1 = r_on/2: the peak, falling branch 2 - 2 * 0.1 / 0.2
    (3.5, 0.5),        # phi = 0.15: falling, 2 - 2 * 0.15 / 0.2
    (7.0, 0.0005),     # phi = 0.5 >= r_on: closed, leak alpha * phi
    (4.0, 0.0002),     # phi = 0.2 = r_on exactly: closed branch (not the ramp)
    (0.0, 0.0008),     # t < s: (0 - 2) mod 10 = 8 -> phi = 0.8 (fmod would give -0.2)
    (-7.5, 0.5),       # t < s by more than a period: (-9.5) mod 10 = 0.5 -> phi = 0.05
])
def test_gate_hand_computed(t, expected):
    tau, s, r_on = (torch.tensor([v], dtype=torch.float64) for v in (10.0, 2.0, 0.2))
    k = time_gate(torch.tensor([t], dtype=torch.float64), tau, s, r_on, leak=1e-3)
    assert k.item() == pytest.approx(expected, abs=1e-12)


def test_gate_floor_mod_not_fmod():
    # equations.md: t - s = -2, tau = 5 -> phi = 0.6, closed; fmod would give -0.4
    k = time_gate(torch.tensor([0.0], dtype=torch.float64), torch.tensor([5.0]).double(),
                  torch.tensor([2.0]).double(), 0.05, leak=1.0)
    assert k.item() == pytest.approx(0.6)


@pytest.mark.parametrize("t0", [1e8, 1.6e9])
def test_gate_float64_phase_at_large_times(t0):
    # (t0 + 0.3) mod 2.5 = 0.3 since t0 is a multiple of 2.5; phi = 0.12, r_on = 0.5 -> rising
    t = torch.tensor([t0 + 0.3], dtype=torch.float64)
    k = time_gate(t, torch.tensor([2.5]), torch.tensor([0.0]), 0.5, leak=0.0)
    assert k.dtype == torch.float32
    assert k.item() == pytest.approx(2 * 0.12 / 0.5, abs=1e-5)
    # the same timestamp in float32 loses the phase entirely (spacing 8 or 128): the gate differs
    k32 = time_gate(t.float(), torch.tensor([2.5]), torch.tensor([0.0]), 0.5, leak=0.0)
    assert abs(k32.item() - k.item()) > 0.1


def test_gate_keeps_tau_and_r_on_positive():
    k = time_gate(torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0, -1.0]),
                  torch.tensor([0.0, 0.0]), torch.tensor([0.0, 0.05]), leak=1e-3)
    assert torch.isfinite(k).all()


def test_gate_gradcheck():
    g = gen(1)
    tau = (torch.rand(6, generator=g, dtype=torch.float64) * 5 + 1).requires_grad_()
    shift = (torch.rand(6, generator=g, dtype=torch.float64) * 3).requires_grad_()
    r_on = torch.full((6,), 0.9, dtype=torch.float64, requires_grad=True)
    t = torch.rand(4, 3, generator=g, dtype=torch.float64) * 20 - 5
    assert torch.autograd.gradcheck(lambda a, b, c: time_gate(t, a, b, c, leak=0.01),
                                    (tau, shift, r_on))


def test_gate_derivative_is_piecewise_linear_phase():
    # d phi / d tau = -(t - s) / tau^2 on every branch: check on the rising branch
    tau = torch.tensor([10.0], dtype=torch.float64, requires_grad=True)
    s = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([22.5], dtype=torch.float64)  # two periods later, phi = 0.05
    k = time_gate(t, tau, s, torch.tensor([0.2], dtype=torch.float64))
    k.sum().backward()
    dk_dphi = 2 / 0.2
    assert tau.grad.item() == pytest.approx(dk_dphi * -(22.5 - 2.0) / 100)
    assert s.grad.item() == pytest.approx(dk_dphi * -1 / 10)


# --- PhasedLSTM against the independent float64 implementation -------------------------------

@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_plstm_matches_numpy_reference(mode, dtype, tol):
    torch.manual_seed(0)
    B, T, F, H = 5, 23, 3, 7
    m = PhasedLSTM(F, H, num_layers=3, r_on=0.3, leak=1e-3, tau_init=(0.0, 2.0)).to(dtype)
    with torch.no_grad():  # several shifts beyond the first timestamps: times before the shift
        m.shift_l0.add_(5.0)
    m.train(mode == "train")
    x = torch.randn(B, T, F, dtype=dtype)
    t = irregular_times(B, T, offset=1e8)
    t[0] = irregular_times(1, T, offset=0.0, seed=3)  # one sample starts before the shifts
    lengths = torch.tensor([23, 1, 17, 9, 23])
    out, (h, c) = m(x, t, lengths=lengths)
    alpha = 1e-3 if mode == "train" else 0.0
    r_out, r_h, r_c = plstm_np(x.double().numpy(), t.numpy(), lengths.numpy(), layers_of(m), alpha)
    np.testing.assert_allclose(out.detach().double().numpy(), r_out, atol=tol)
    np.testing.assert_allclose(h.detach().double().numpy(), r_h, atol=tol)
    np.testing.assert_allclose(c.detach().double().numpy(), r_c, atol=tol)


def test_plstm_gradcheck_including_tau_and_shift():
    torch.manual_seed(1)
    m = PhasedLSTM(2, 3, num_layers=2, r_on=0.6, tau_init=(1.0, 2.0)).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    t = irregular_times(2, 5, seed=4)
    names = [n for n, _ in m.named_parameters()]
    assert {"tau_l0", "shift_l0", "tau_l1", "shift_l1"} <= set(names)
    params = [p for _, p in m.named_parameters()]

    def f(x, *ps):
        sd = dict(zip(names, ps))
        out, (h, c) = torch.func.functional_call(m, sd, (x, t))
        return out, h, c

    assert torch.autograd.gradcheck(f, (x, *params), atol=1e-6)


def _open_gate(m):
    """tau = 1, shift = -0.5, r_on = 1 -> phi = 0.5 at integer t -> k = 1 exactly."""
    with torch.no_grad():
        for k in range(m.num_layers):
            getattr(m, f"tau_l{k}").fill_(1.0)
            getattr(m, f"shift_l{k}").fill_(-0.5)
            getattr(m, f"r_on_l{k}").fill_(1.0)


def test_gate_always_open_equals_nn_lstm():
    torch.manual_seed(2)
    ref = torch.nn.LSTM(4, 6, num_layers=2, batch_first=True)
    m = PhasedLSTM(4, 6, num_layers=2)
    missing = m.load_state_dict(ref.state_dict(), strict=False).missing_keys
    assert all(k.startswith(("tau", "shift", "r_on")) for k in missing)
    _open_gate(m)
    x = torch.randn(3, 11, 4)
    t = torch.arange(11, dtype=torch.float64).expand(3, 11) + 1e6
    h0, c0 = torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    for mode in (True, False):
        m.train(mode)
        out, (h, c) = m(x, t, (h0, c0))
        r_out, (r_h, r_c) = ref(x, (h0, c0))
        torch.testing.assert_close(out, r_out)
        torch.testing.assert_close(h, r_h)
        torch.testing.assert_close(c, r_c)


def test_phased_gru_always_open_equals_nn_gru():
    torch.manual_seed(3)
    ref = torch.nn.GRU(4, 6, num_layers=2, batch_first=True)
    m = PhasedGRU(4, 6, num_layers=2)
    m.load_state_dict(ref.state_dict(), strict=False)
    _open_gate(m)
    x, t = torch.randn(3, 11, 4), torch.arange(11.0).expand(3, 11)
    h0 = torch.randn(2, 3, 6)
    out, h = m(x, t, h0)
    r_out, r_h = ref(x, h0)
    torch.testing.assert_close(out, r_out)
    torch.testing.assert_close(h, r_h)


@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU])
def test_gate_closed_without_leak_keeps_state_exactly(cls):
    torch.manual_seed(4)
    m = cls(3, 5, num_layers=2).eval()
    with torch.no_grad():  # phi in [0.5, 0.6) for t in [0, 10): closed for r_on = 0.05
        for k in range(2):
            getattr(m, f"tau_l{k}").fill_(100.0)
            getattr(m, f"shift_l{k}").fill_(-50.0)
    x = torch.randn(2, 9, 3) * 10
    t = torch.rand(2, 9, dtype=torch.float64).cumsum(1)
    n = 2 if cls is PhasedLSTM else 1
    state = tuple(torch.randn(2, 2, 5) for _ in range(n))
    out, fin = m(x, t, state if n == 2 else state[0])
    fin = fin if n == 2 else (fin,)
    for a, b in zip(fin, state):
        assert torch.equal(a, b)
    assert torch.equal(out, state[0][-1].unsqueeze(1).expand(2, 9, 5))
    m.train()  # with the leak on, the state moves
    _, fin = m(x, t, state if n == 2 else state[0])
    fin = fin if n == 2 else (fin,)
    assert not torch.equal(fin[0], state[0])


@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU])
@pytest.mark.parametrize("mode", [True, False])
def test_chunked_stream_equals_one_call(cls, mode):
    torch.manual_seed(5)
    m = cls(2, 8, num_layers=2, r_on=0.2).train(mode)
    x, t = torch.randn(3, 40, 2), irregular_times(3, 40, offset=1e9)
    full, fin = m(x, t)
    state, parts = None, []
    for a, b in ((0, 7), (7, 8), (8, 31), (31, 40)):
        o, state = m(x[:, a:b], t[:, a:b], state)
        parts.append(o)
    torch.testing.assert_close(torch.cat(parts, 1), full)
    for u, v in zip(fin if cls is PhasedLSTM else (fin,), state if cls is PhasedLSTM else (state,)):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU, LSTM, BNLSTM])
def test_lengths_padding(cls):
    torch.manual_seed(6)
    m = cls(2, 5, num_layers=2).eval()
    x, t = torch.randn(3, 10, 2), irregular_times(3, 10)
    lengths = torch.tensor([10, 4, 7])
    out, fin = m(x, t, lengths=lengths)
    h_n = fin[0] if isinstance(fin, tuple) else fin
    for b, L in enumerate(lengths.tolist()):
        o_b, fin_b = m(x[b:b + 1, :L], t[b:b + 1, :L])
        hb = fin_b[0] if isinstance(fin_b, tuple) else fin_b
        torch.testing.assert_close(out[b, :L], o_b[0])
        torch.testing.assert_close(h_n[:, b], hb[:, 0])
        assert torch.equal(out[b, L:], torch.zeros_like(out[b, L:]))


def test_leak_in_train_not_in_eval():
    m = PhasedLSTM(1, 4, leak=0.5)
    assert m.current_leak() == 0.5
    assert m.eval().current_leak() == 0.0
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    closed = m.time_gates(t, 0)
    assert torch.all(closed[closed < 1e-9] == 0)  # eval: closed branch is exactly 0


def test_batch_first_false():
    torch.manual_seed(7)
    m = PhasedLSTM(2, 3, batch_first=False)
    x, t = torch.randn(6, 4, 2), irregular_times(4, 6).t()
    out, _ = m(x, t)
    m.batch_first = True
    out2, _ = m(x.transpose(0, 1), t.t())
    torch.testing.assert_close(out, out2.transpose(0, 1))


def test_integer_and_float32_timestamps_accepted():
    m = PhasedLSTM(1, 3)
    x = torch.randn(2, 5, 1)
    out_i, _ = m(x, torch.arange(5).expand(2, 5))
    out_d, _ = m(x, torch.arange(5, dtype=torch.float64).expand(2, 5))
    torch.testing.assert_close(out_i, out_d)


# --- baselines -------------------------------------------------------------------------------

def test_lstm_baseline_appends_time():
    torch.manual_seed(8)
    m = LSTM(2, 4, time_scale=0.5)
    assert m.lstm.input_size == 3
    x, t = torch.randn(2, 5, 2), irregular_times(2, 5)
    out, _ = m(x, t)
    ref, _ = m.lstm(torch.cat([x, (0.5 * t).float().unsqueeze(-1)], -1))
    torch.testing.assert_close(out, ref)


def test_bnlstm_statistics_train_vs_eval():
    torch.manual_seed(9)
    m = BNLSTM(1, 6, max_stat_steps=4)
    x, t = torch.randn(8, 6, 1), irregular_times(8, 6)
    bn = m.layers[0].bn_x
    before = bn.running_mean.clone()
    m.train()
    out_full, _ = m(x, t)
    changed = bn.running_mean.clone()
    assert not torch.equal(before, changed)
    # train: batch statistics, so a sample's output depends on the rest of the batch
    out_half, _ = m(x[:4], t[:4])
    assert not torch.allclose(out_half, out_full[:4])
    m.eval()
    frozen = bn.running_mean.clone()
    e_full, _ = m(x, t)
    e_half, _ = m(x[:4], t[:4])
    assert torch.equal(bn.running_mean, frozen)  # eval never updates statistics
    torch.testing.assert_close(e_half, e_full[:4])  # running statistics: batch-independent


def test_bnlstm_statistics_ignore_padding():
    torch.manual_seed(10)
    m = BNLSTM(1, 3, max_stat_steps=10)
    x, t = torch.randn(4, 5, 1), irregular_times(4, 5)
    lengths = torch.tensor([5, 2, 5, 2])
    x_garbage = x.clone()
    x_garbage[1, 2:] = 1e3
    x_garbage[3, 2:] = -1e3
    a, _ = m(x, t, lengths=lengths)
    b, _ = m(x_garbage, t, lengths=lengths)
    torch.testing.assert_close(a, b)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU, LSTM, BNLSTM])
@pytest.mark.parametrize("case, arg", [
    ("x2d", "x:"), ("xF", "input_size"), ("tshape", "t:"), ("tnan", "finite"),
    ("lenshape", "lengths:"), ("lenrange", "lengths:"), ("lenzero", "lengths:"),
])
def test_bad_input_names_the_argument(cls, case, arg):
    m = cls(2, 3)
    x, t, lengths = torch.randn(2, 4, 2), torch.rand(2, 4).cumsum(1), None
    if case == "x2d":
        x = x[0]
    elif case == "xF":
        x = torch.randn(2, 4, 5)
    elif case == "tshape":
        t = t[:, :3]
    elif case == "tnan":
        t[1, 2] = float("nan")
    elif case == "lenshape":
        lengths = torch.tensor([4, 4, 4])
    elif case == "lenrange":
        lengths = torch.tensor([4, 5])
    elif case == "lenzero":
        lengths = torch.tensor([0, 4])
    with pytest.raises(ValueError, match=arg):
        m(x, t, lengths=lengths)


@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU, LSTM, BNLSTM])
def test_nan_in_padding_is_allowed(cls):
    m = cls(1, 3)
    t = torch.tensor([[0.0, 1.0, float("nan")], [0.0, 1.0, 2.0]], dtype=torch.float64)
    out, _ = m(torch.randn(2, 3, 1), t, lengths=torch.tensor([2, 3]))
    assert torch.isfinite(out).all()


def test_bad_state_and_constructor_arguments():
    m = PhasedLSTM(2, 3, num_layers=2)
    with pytest.raises(ValueError, match=r"state: expected \[num_layers, B, H\] = \(2, 2, 3\)"):
        m(torch.randn(2, 4, 2), torch.rand(2, 4), (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
    with pytest.raises(ValueError, match="r_on"):
        PhasedLSTM(1, 2, r_on=0.0)
    with pytest.raises(ValueError, match="tau_init"):
        PhasedLSTM(1, 2, tau_init=(3.0, 1.0))
