"""The GPU recurrence (cells/compiled.py: per step one GEMM and one fused pointwise function,
compiled by torch.compile) equals the reference loop and the float64 oracle, values and
gradients. The step functions run eagerly for the many configurations (the very code that is
compiled), and compiled by inductor (its C++ backend here, Triton on CUDA) for the default
training configuration of each model, within a few cold compiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_numpy import layers_of, plstm_np
from test_bn_fused import assert_same as bn_assert_same
from test_bn_fused import gradcheck_case as bn_gradcheck_case
from test_bn_fused import make_case as bn_make_case
from test_fused import assert_same, irregular_times, make_case, safe_gradcheck_case

from plstm_repro.cells import BNLSTM, PhasedLSTM, bn_fused, compiled, fused
from plstm_repro.cells.compiled import CompiledOps, can_compile

EAGER = CompiledOps(compile=False)


@pytest.fixture
def eager(monkeypatch):
    """backend="fused" runs the compiled recurrence's step functions eagerly."""
    monkeypatch.setattr(fused, "kernels", lambda device: EAGER)
    monkeypatch.setattr(bn_fused, "kernels", lambda device: EAGER)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("train", [True, False])  # leak on (train) and off (eval)
@pytest.mark.parametrize("learn_r_on", [False, True])
def test_plstm_steps_equal_reference(eager, dtype, train, learn_r_on):
    """Two layers, lengths with padding, irregular float64 timestamps up to 1e9 and before 0."""
    assert_same(*make_case(dtype, train, learn_r_on=learn_r_on, H=13))


def test_plstm_steps_without_lengths_or_time_grads(eager):
    torch.manual_seed(3)
    model = PhasedLSTM(2, 5, learn_time=False, dtype=torch.float64).train()
    x, t = torch.randn(3, 25, 2, dtype=torch.float64), irregular_times(3, 25, seed=4)
    state = (torch.zeros(1, 3, 5, dtype=torch.float64),) * 2
    assert_same(model, x, t, state, None)


@pytest.mark.parametrize("H, learn_r_on", [(3, True), (6, False)])
def test_plstm_steps_gradcheck(H, learn_r_on):
    """Finite differences, through FusedPLSTM with the mask (phases away from eq. 6's kinks)."""
    fn, inputs = safe_gradcheck_case(EAGER, H, learn_r_on)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("train", [True, False])
def test_plstm_steps_equal_oracle(eager, train):
    """The float64 NumPy oracle (eq. 1-10 written neuron by neuron), leak on and off."""
    torch.manual_seed(1)
    model = PhasedLSTM(3, 6, num_layers=2, r_on=0.3, tau_init=(0.5, 2.0),
                       dtype=torch.float64, backend="fused").train(train)
    x, t = torch.randn(3, 30, 3, dtype=torch.float64), irregular_times(3, 30, seed=2)
    lengths = torch.tensor([30, 11, 2])
    with torch.no_grad():
        out, (h, c) = model(x, t, lengths=lengths)
    o, hn, cn = plstm_np(x.numpy(), t.numpy(), lengths.numpy(), layers_of(model),
                         model.current_leak())
    for a, b in ((out, o), (h, hn), (c, cn)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("train", [True, False])
def test_bn_steps_equal_reference(eager, train):
    """Outputs, state, running statistics and gradients; lengths with an all-padding step,
    T > max_stat_steps; float64 and float32; with and without grad; no lengths."""
    bn_assert_same(bn_make_case(torch.float64, train))
    bn_assert_same(bn_make_case(torch.float32, train))
    bn_assert_same(bn_make_case(torch.float64, train), grad=False)
    bn_assert_same(bn_make_case(torch.float64, train, lengths=False))


@pytest.mark.parametrize("train", [True, False])
def test_bn_steps_gradcheck(train):
    fn, inputs = bn_gradcheck_case(EAGER, train)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_backend_compiled_is_accepted_and_auto_keeps_cpp_on_cpu():
    """backend="compiled" gives CompiledOps on the CPU; "auto" and "fused" keep the C++
    kernels (or the fallback) there: CPU training is unchanged."""
    x = torch.zeros(1, 2, 2)
    for model in (PhasedLSTM(2, 3, backend="compiled"), BNLSTM(2, 3, backend="compiled")):
        ops = model.fused_kernels(x)
        assert isinstance(ops, CompiledOps) and ops.compile
        model.backend = "auto"
        assert not isinstance(model.fused_kernels(x), CompiledOps)
    with pytest.raises(ValueError, match="peephole"):
        PhasedLSTM(2, 3, peephole=True, backend="compiled")
    with pytest.raises(ValueError, match="unavailable"):
        PhasedLSTM(2, 3, backend="compiled").fused_kernels(x.half())


# ---- inductor: the compiled step functions (a few cold compiles, ~10-40 s each here) ------
needs_compiler = pytest.mark.skipif(not can_compile(torch.device("cpu")),
                                    reason="torch.compile has no CPU backend here")


@needs_compiler
def test_compiled_plstm_equals_reference_and_oracle():
    """Default training configuration (learn_time on, learn_r_on off, float32), lengths,
    leak on (train, fwd + bwd) and off (eval): one graph per step function, built by
    inductor directly (not torch.compile's fallback), shared by train and eval and layers."""
    model, x, t, state, lengths = make_case(torch.float32, True, learn_r_on=False, H=13)
    before = set(compiled._BUILT)
    assert_same(model, x, t, state, lengths, other="compiled")
    model.eval()
    with torch.no_grad():  # from the zero state, as the oracle
        out, (h, c) = model(x, t, lengths=lengths)
    new = set(compiled._BUILT) - before
    assert sorted(k[0] for k in new) == ["plstm_bwd", "plstm_fwd"]
    assert all(compiled._BUILT[k][1] is not None for k in new)
    model64 = PhasedLSTM(3, 13, num_layers=2, r_on=0.3, dtype=torch.float64).eval()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    o, _, _ = plstm_np(x.double().numpy(), t.numpy(), lengths.numpy(), layers_of(model64), 0.0)
    assert model.backend == "compiled"
    np.testing.assert_allclose(out.numpy(), o, rtol=0, atol=2e-5)
    assert torch.isfinite(h).all() and torch.isfinite(c).all()


@needs_compiler
def test_compiled_bnlstm_equals_reference():
    """BN-LSTM in train (batch statistics, running statistics updated as the reference loop);
    one graph per step function and layer width."""
    before = set(compiled._BUILT)
    bn_assert_same(bn_make_case(torch.float32, True), backend="compiled")
    new = set(compiled._BUILT) - before
    assert sorted(k[0] for k in new) == ["bn_bwd", "bn_fwd"]


# ---- on a lent GPU (skipped without CUDA): the Triton build of the same step functions ------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _grads(model, x, t, lengths):
    x = x.clone().requires_grad_()
    out, (h, c) = model(x, t, lengths=lengths)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device).view(out.shape)
    ((out * w).sum() + (h ** 2).sum() + 0.5 * c.sum()).backward()
    g = {n: p.grad.detach().double().cpu() for n, p in model.named_parameters()}
    g["x"] = x.grad.double().cpu()
    return out.detach().double().cpu(), g


@needs_cuda
@pytest.mark.parametrize("cell", ["phased", "bn"])
@pytest.mark.parametrize("train", [True, False])
def test_cuda_default_backend_is_compiled_and_equals_cpu_reference(cell, train):
    """auto on CUDA -> the compiled recurrence (Triton); equal to the CPU reference loop in
    float64 (values and gradients, lengths, leak on in train and off in eval)."""
    torch.manual_seed(0)
    dt = torch.float64
    make = (lambda: PhasedLSTM(3, 13, num_layers=2, r_on=0.3, tau_init=(0.5, 3.0), dtype=dt)) \
        if cell == "phased" else (lambda: BNLSTM(3, 13, num_layers=2, max_stat_steps=6, dtype=dt))
    ref = make().train(train)
    ref.backend = "reference"
    gpu = make().train(train)
    gpu.load_state_dict(ref.state_dict())
    gpu = gpu.cuda()
    x, t = torch.randn(4, 40, 3, dtype=dt), irregular_times(4, 40)
    lengths = torch.tensor([40, 13, 1, 29])
    assert isinstance(gpu.fused_kernels(x.cuda()), CompiledOps)
    o_ref, g_ref = _grads(ref, x, t, lengths)
    o_gpu, g_gpu = _grads(gpu, x.cuda(), t.cuda(), lengths.cuda())
    torch.testing.assert_close(o_gpu, o_ref, rtol=1e-9, atol=1e-9)
    for name in g_ref:
        scale = g_ref[name].abs().max().clamp_min(1e-12)
        assert ((g_gpu[name] - g_ref[name]).abs().max() / scale) < 1e-8, name
    for k, v in ref.state_dict().items():  # running statistics of the BN-LSTM
        torch.testing.assert_close(gpu.state_dict()[k].cpu(), v, rtol=1e-9, atol=1e-9)
