"""The recurrent core against the paper's equations, nn.LSTM/nn.GRU, and its own invariants."""

import numpy as np
import pytest
import torch
from backends import BACKENDS, TRAINABLE, use_backend
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

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_plstm_matches_numpy_reference(mode, dtype, tol, backend, monkeypatch):
    torch.manual_seed(0)
    B, T, F, H = 5, 23, 3, 13  # H = 13: whole SIMD vectors (4 doubles, 8 floats) and a tail
    m = PhasedLSTM(F, H, num_layers=3, r_on=0.3, leak=1e-3, tau_init=(0.0, 2.0)).to(dtype)
    with torch.no_grad():  # several shifts beyond the first timestamps: times before the shift
        m.shift_l0.add_(5.0)
    m.train(mode == "train")
    forward = use_backend(m, backend, monkeypatch)
    x = torch.randn(B, T, F, dtype=dtype)
    t = irregular_times(B, T, offset=1e8)
    t[0] = irregular_times(1, T, offset=0.0, seed=3)  # one sample starts before the shifts
    lengths = torch.tensor([23, 1, 17, 9, 23])
    with torch.no_grad():
        out, (h, c) = forward(x, t, None, lengths)
    alpha = 1e-3 if mode == "train" else 0.0
    r_out, r_h, r_c = plstm_np(x.double().numpy(), t.numpy(), lengths.numpy(), layers_of(m), alpha)
    np.testing.assert_allclose(out.double().numpy(), r_out, atol=tol)
    np.testing.assert_allclose(h.double().numpy(), r_h, atol=tol)
    np.testing.assert_allclose(c.double().numpy(), r_c, atol=tol)


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


@pytest.mark.parametrize("cls, backend", [(PhasedLSTM, b) for b in BACKENDS]
                         + [(PhasedGRU, "reference")])
def test_gate_closed_without_leak_keeps_state_exactly(cls, backend, monkeypatch):
    torch.manual_seed(4)
    m = cls(3, 5, num_layers=2).eval()
    with torch.no_grad():  # phi in [0.5, 0.6) for t in [0, 10): closed for r_on = 0.05
        for k in range(2):
            getattr(m, f"tau_l{k}").fill_(100.0)
            getattr(m, f"shift_l{k}").fill_(-50.0)
    forward = use_backend(m, backend, monkeypatch) if cls is PhasedLSTM else m
    x = torch.randn(2, 9, 3) * 10
    t = torch.rand(2, 9, dtype=torch.float64).cumsum(1)
    n = 2 if cls is PhasedLSTM else 1
    state = tuple(torch.randn(2, 2, 5) for _ in range(n))
    with torch.no_grad():
        out, fin = forward(x, t, state if n == 2 else state[0])
    fin = fin if n == 2 else (fin,)
    for a, b in zip(fin, state):
        assert torch.equal(a, b)
    assert torch.equal(out, state[0][-1].unsqueeze(1).expand(2, 9, 5))


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_leak_in_train_not_in_eval(backend, monkeypatch):
    """alpha applies in train() only. Every gate is closed (phi in [0.5, 0.6) >= r_on): eval
    keeps the state exactly, train moves it with k = alpha * phi, as the NumPy oracle does."""
    torch.manual_seed(11)
    m = PhasedLSTM(2, 9, leak=0.5)
    with torch.no_grad():
        m.tau_l0.fill_(10.0)
        m.shift_l0.fill_(0.0)
    t = torch.tensor([[5.0, 5.4, 5.9], [5.2, 5.3, 5.5]], dtype=torch.float64)
    x, state = torch.randn(2, 3, 2), (torch.randn(1, 2, 9), torch.randn(1, 2, 9))
    assert m.current_leak() == 0.5 and m.eval().current_leak() == 0.0
    assert torch.equal(m.time_gates(t, 0), torch.zeros(2, 3, 9))
    m.train()
    torch.testing.assert_close(m.time_gates(t, 0), 0.5 * (t / 10.0).float().unsqueeze(-1)
                               .expand(2, 3, 9))
    for mode in ("eval", "train"):
        m.train(mode == "train")
        if backend == "sparse" and mode == "train":
            continue
        forward = use_backend(m, backend, monkeypatch)
        with torch.no_grad():
            out, (h, c) = forward(x, t, state)
        if mode == "eval":  # closed and no leak: the state is kept bit for bit
            assert torch.equal(h, state[0]) and torch.equal(c, state[1])
            assert torch.equal(out, state[0][0].unsqueeze(1).expand(2, 3, 9))
        else:
            assert not torch.equal(c, state[1])


def test_batch_first_false():
    torch.manual_seed(7)
    m = PhasedLSTM(2, 3, batch_first=False)
    x, t = torch.randn(6, 4, 2), irregular_times(4, 6).t()
    out, _ = m(x, t)
    m.batch_first = True
    out2, _ = m(x.transpose(0, 1), t.t())
    torch.testing.assert_close(out, out2.transpose(0, 1))


@pytest.mark.parametrize("backend", TRAINABLE)
def test_integer_and_float32_timestamps_accepted(backend, monkeypatch):
    torch.manual_seed(12)
    m = PhasedLSTM(1, 9, r_on=0.3, tau_init=(0.5, 2.0))
    forward = use_backend(m, backend, monkeypatch)
    x, steps = torch.randn(2, 50, 1), torch.arange(50).expand(2, 50)
    ref, _ = forward(x, steps.double() * 0.25)
    out32, _ = forward(x, steps.float() * 0.25)  # multiples of 0.25: exact in float32
    torch.testing.assert_close(out32, ref)
    ref, _ = forward(x, steps.double())
    for dtype in (torch.int32, torch.int64):
        out, _ = forward(x, steps.to(dtype))
        torch.testing.assert_close(out, ref)


def test_coarse_float32_timestamps_warn_once():
    """float32 spacing is 128 at 1.6e9 (equations.md): the output changes by ~0.1 without a
    word unless we warn; float64 (or small float32) timestamps give no warning."""
    import warnings

    torch.manual_seed(13)
    m = PhasedLSTM(1, 6, r_on=0.05, tau_init=(1.0, 3.0))
    x = torch.randn(2, 20, 1)
    t = 1.6e9 + torch.arange(20, dtype=torch.float64).expand(2, 20) * 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(x, t)
        m(x, torch.arange(20.0).expand(2, 20))  # small float32: exact enough
    with pytest.warns(RuntimeWarning, match=r"torch.float32 timestamps reach 1.6e\+09.*float64"):
        m(x, t.float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(x, t.float())  # once per model


@pytest.mark.parametrize("name", ["tau", "shift", "r_on"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_time_parameter_is_rejected(name, backend, monkeypatch):
    m = PhasedLSTM(1, 6, num_layers=2).eval()
    forward = use_backend(m, backend, monkeypatch)
    x, t = torch.randn(1, 4, 1), torch.arange(4.0).unsqueeze(0)
    forward(x, t)
    with torch.no_grad():
        getattr(m, f"{name}_l1")[3] = float("nan")  # in place, as an optimiser step would
    with pytest.raises(ValueError, match=f"{name}_l1: expected finite values.*neurons \\[3\\]"):
        forward(x, t)


@pytest.mark.parametrize("cls", [PhasedLSTM, PhasedGRU, LSTM, BNLSTM])
def test_dtype_mismatch_names_the_argument(cls):
    m = cls(2, 3).double()
    x, t = torch.randn(1, 4, 2), torch.arange(4.0).unsqueeze(0)
    with pytest.raises(ValueError, match=r"x: dtype torch.float32 does not match.*torch.float64"):
        m(x, t)
    n = 1 if cls is PhasedGRU else 2
    state = tuple(torch.zeros(1, 1, 3) for _ in range(n))
    with pytest.raises(ValueError, match=r"state: dtype torch.float32 does not match"):
        m(x.double(), t, state[0] if n == 1 else state)


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


CELLS = ([(PhasedLSTM, b) for b in BACKENDS]
         + [(PhasedGRU, "reference"), (LSTM, "reference"), (BNLSTM, "reference"),
            (BNLSTM, "fused")])


def _per_sample_loss(out, fin, w):
    """A loss touching the outputs and every final state tensor: sum over samples."""
    fin = fin if isinstance(fin, tuple) else (fin,)
    return (out * w).sum() + sum((s ** 2).sum() for s in fin)


@pytest.mark.parametrize("cls, backend", CELLS)
@pytest.mark.parametrize("train", [True, False])
def test_nan_in_padding_never_reaches_state_or_gradients(cls, backend, train, monkeypatch):
    """NaN and inf in the padded x and t (what a collate may leave there): out, the final state
    and every gradient equal those of the unpadded sequences run one by one."""
    if backend == "sparse" and train:
        pytest.skip("sparse inference runs in eval() only")
    torch.manual_seed(14)
    m = cls(2, 13, num_layers=2).double().train(train)
    if cls is BNLSTM:
        m.eval()  # batch statistics make a sample depend on the batch: compare with running ones
        m.backend = backend
    forward = use_backend(m, backend, monkeypatch) if cls is PhasedLSTM else m
    B, T = 3, 9
    x, t = torch.randn(B, T, 2, dtype=torch.float64), irregular_times(B, T)
    lengths = torch.tensor([9, 4, 6])
    x[1, 4:] = float("nan")
    x[2, 6:, 0] = float("inf")
    t[1, 5:] = float("nan")
    t[2, 7:] = -float("inf")
    w = torch.randn(B, T, 13, dtype=torch.float64)
    grad = backend != "sparse"

    xp = x.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        out, fin = forward(xp, t, None, lengths)
        if grad:
            _per_sample_loss(out, fin, w).backward()
    got = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad()
    fins = fin if isinstance(fin, tuple) else (fin,)
    for s in (out, *fins):
        assert torch.isfinite(s).all()
    want = {}
    for b, L in enumerate(lengths.tolist()):
        xb = x[b:b + 1, :L].clone().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            ob, fb = forward(xb, t[b:b + 1, :L])
            if grad:
                _per_sample_loss(ob, fb, w[b:b + 1, :L]).backward()
        torch.testing.assert_close(out[b, :L], ob[0].detach())
        assert torch.equal(out[b, L:], torch.zeros_like(out[b, L:]))
        for s, sb in zip(fins, fb if isinstance(fb, tuple) else (fb,)):
            torch.testing.assert_close(s[:, b], sb[:, 0].detach())
        if grad:
            torch.testing.assert_close(xp.grad[b, :L], xb.grad[0])
            assert torch.equal(xp.grad[b, L:], torch.zeros_like(xp.grad[b, L:]))
    if grad:
        want = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
        assert want.keys() == got.keys() and want
        for n in want:
            torch.testing.assert_close(got[n], want[n], msg=n)


def test_nan_in_padding_issue_reproduction():
    """The issue's reproduction, verbatim: h, c and weight_hh_l0.grad were NaN."""
    x = torch.randn(2, 5, 2)
    x[1, 3:] = float("nan")
    t = torch.arange(5.0).expand(2, 5)
    m = PhasedLSTM(2, 4)
    out, (h, c) = m(x, t, lengths=torch.tensor([5, 3]))
    out.sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(c).all()
    assert torch.isfinite(m.weight_hh_l0.grad).all()


def test_nan_in_padding_of_embedded_inputs():
    """SequenceModel embeds feature 0 as an index: NaN there in the padding must not index."""
    from plstm_repro.models import build_model

    m = build_model("phased_lstm", input_size=2, num_outputs=3, hidden_size=5, embed=(10, 4))
    x = torch.tensor([[[1.0, 1.0], [2.0, -1.0], [3.0, 1.0]],
                      [[4.0, 1.0], [float("nan"), float("nan")], [1e12, 0.0]]])
    t = torch.arange(3.0).expand(2, 3)
    y = m(x, t, torch.tensor([3, 1]))
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[1], m(x[1:, :1], t[1:, :1], torch.tensor([1]))[0])


def test_bad_state_and_constructor_arguments():
    m = PhasedLSTM(2, 3, num_layers=2)
    with pytest.raises(ValueError, match=r"state: expected \[num_layers, B, H\] = \(2, 2, 3\)"):
        m(torch.randn(2, 4, 2), torch.rand(2, 4), (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
    with pytest.raises(ValueError, match="r_on"):
        PhasedLSTM(1, 2, r_on=0.0)
    with pytest.raises(ValueError, match="tau_init"):
        PhasedLSTM(1, 2, tau_init=(3.0, 1.0))
