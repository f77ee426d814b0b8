"""The fused recurrence (C++ on the CPU, PyTorch ops for CUDA) equals the reference loop."""

from __future__ import annotations

import warnings

import pytest
import torch

from plstm_repro.cells import _ext, fused
from plstm_repro.cells.phased_lstm import PhasedLSTM


def needs_ext():
    if _ext.load_extension() is None:
        pytest.skip("C++ kernels unavailable")


def irregular_times(B, T, seed=0):
    """Per-sample irregular float64 timestamps with offsets 1e6..1e9; sample 0 starts before 0
    (before the shifts: the floor-mod must wrap correctly)."""
    g = torch.Generator().manual_seed(seed)
    start = 10 ** (6 + 3 * torch.rand(B, 1, generator=g, dtype=torch.float64))
    t = start + torch.cumsum(torch.rand(B, T, generator=g, dtype=torch.float64) * 2.0, 1)
    t[0] = torch.linspace(-25.0, 15.0, T, dtype=torch.float64)
    return t


def run(model, x, t, state, lengths):
    """Outputs and the gradients of a loss touching out, h_n and c_n."""
    x = x.clone().requires_grad_()
    h0, c0 = (s.clone().requires_grad_() for s in state)
    out, (h, c) = model(x, t, (h0, c0), lengths)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    ((out * w).sum() + (h ** 2).sum() + 0.5 * c.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grads.update(x=x.grad, h0=h0.grad, c0=c0.grad)
    model.zero_grad()
    return (out.detach(), h.detach(), c.detach()), grads


def assert_same(model, x, t, state, lengths, other="fused"):
    tol = 1e-10 if x.dtype == torch.float64 else 2e-5
    model.backend = "reference"
    ref_out, ref_g = run(model, x, t, state, lengths)
    model.backend = other
    out, g = run(model, x, t, state, lengths)
    for a, b in zip(ref_out, out):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)
    assert ref_g.keys() == g.keys()
    for name in ref_g:  # relative to each gradient's scale (d tau grows with t: up to ~1e9)
        scale = ref_g[name].abs().max().clamp_min(1e-12)
        err = ((g[name] - ref_g[name]).abs().max() / scale).item()
        assert err < tol * 10, f"{name}: relative error {err:.2e}"


def make_case(dtype, train, num_layers=2, learn_r_on=True, H=7):
    torch.manual_seed(0)
    model = PhasedLSTM(3, H, num_layers=num_layers, learn_r_on=learn_r_on, r_on=0.3,
                       tau_init=(0.5, 3.0), dtype=dtype).train(train)
    B, T = 4, 40
    x = torch.randn(B, T, 3, dtype=dtype)
    t = irregular_times(B, T)
    state = (torch.randn(num_layers, B, H, dtype=dtype), torch.randn(num_layers, B, H, dtype=dtype))
    lengths = torch.tensor([40, 13, 1, 29])
    return model, x, t, state, lengths


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("learn_r_on", [False, True])
@pytest.mark.parametrize("H", [3, 13])
def test_fused_cpu_equals_reference(dtype, train, learn_r_on, H):
    """The default training configuration (learn_time on, learn_r_on off) included: with
    H = 13 the time-gate gradients go through whole SIMD vectors (4 doubles) and a tail, with
    H = 3 through the tail alone."""
    needs_ext()
    assert_same(*make_case(dtype, train, learn_r_on=learn_r_on, H=H))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("learn_r_on", [False, True])
def test_fused_cpu_two_threads_equals_reference(train, learn_r_on):
    """Big enough for the kernels to split the batch over 2 threads (9 samples: 4 + 5 rows), with
    H = 45 and F = 5 not multiples of the SIMD width (8 floats, 4 doubles); the per-thread sums
    of d tau, d W, d b are added."""
    needs_ext()
    torch.manual_seed(0)
    model = PhasedLSTM(5, 45, num_layers=2, learn_r_on=learn_r_on, r_on=0.3,
                       tau_init=(0.5, 3.0)).train(train)
    B, T = 9, 30
    x, t = torch.randn(B, T, 5), irregular_times(B, T)
    state = (torch.randn(2, B, 45), torch.randn(2, B, 45))
    lengths = torch.tensor([30, 13, 1, 29, 30, 7, 30, 22, 30])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert_same(model, x, t, state, lengths)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_fixed_time_params_and_no_lengths(dtype):
    needs_ext()
    torch.manual_seed(3)
    model = PhasedLSTM(2, 5, learn_time=False, dtype=dtype).train()
    x = torch.randn(3, 25, 2, dtype=dtype)
    t = irregular_times(3, 25, seed=4)
    state = (torch.zeros(1, 3, 5, dtype=dtype), torch.zeros(1, 3, 5, dtype=dtype))
    assert_same(model, x, t, state, None)


@pytest.mark.parametrize("train", [True, False])
def test_torch_ops_path_equals_reference(monkeypatch, train):
    """The PyTorch-ops implementation (the CUDA path), run on CPU tensors."""
    monkeypatch.setattr(fused, "kernels", lambda device: fused.TorchOps)
    assert_same(*make_case(torch.float64, train))


def test_fused_used_by_auto_and_chunks_continue():
    needs_ext()
    model, x, t, state, _ = make_case(torch.float32, False)
    assert model.backend == "auto" and model.fused_kernels(x) is not None
    with torch.no_grad():
        full, (h, c) = model(x, t, state)
        a, st = model(x[:, :17], t[:, :17], state)
        b, (h2, c2) = model(x[:, 17:], t[:, 17:], st)
    torch.testing.assert_close(torch.cat([a, b], 1), full)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


def safe_gradcheck_case(ops, H=3, learn_r_on=True, seed=5):
    """A tiny float64 case whose phases sit away from the branch points of eq. 6, where k is
    not differentiable (finite differences would cross them). H = 6 with r_on not learned is
    the default training configuration, whose time-gate gradient takes the SIMD branch (4
    doubles) and a tail of 2."""
    T, B, F = 4, 2, 2
    g = torch.Generator().manual_seed(seed)
    tau = 2.0 + 3.0 * torch.rand(H, generator=g, dtype=torch.float64)
    shift = 1.5 * torch.rand(H, generator=g, dtype=torch.float64)
    r = 0.4 + 0.2 * torch.rand(H, generator=g, dtype=torch.float64)
    t = torch.tensor([[-3.137, 7.319], [-1.463, 8.221], [0.571, 9.913], [2.389, 10.657]],
                     dtype=torch.float64)
    phi = torch.remainder(t.unsqueeze(-1) - shift, tau) / tau
    for edge in (0.0, 1.0, 0.5 * r, r):  # keep every phase 1e-3 away from the branch points
        assert ((phi - edge).abs() > 1e-3).all()
    assert (phi < 0.5 * r).any() and ((phi > 0.5 * r) & (phi < r)).any() and (phi > r).any()
    x = torch.randn(T, B, F, generator=g, dtype=torch.float64)
    w_ih = torch.randn(4 * H, F, generator=g, dtype=torch.float64) * 0.5
    bias = torch.randn(4 * H, generator=g, dtype=torch.float64) * 0.5
    w = torch.randn(4 * H, H, generator=g, dtype=torch.float64) * 0.5
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    c0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, True], [True, False], [True, False]])
    inputs = [v.requires_grad_() for v in (x, w_ih, bias, w, tau, shift, r, h0, c0)]
    r.requires_grad_(learn_r_on)
    return lambda *a: fused.FusedPLSTM.apply(*a, t, mask, 0.01, ops), inputs


@pytest.mark.parametrize("which", ["cpp", "torch"])
@pytest.mark.parametrize("H, learn_r_on", [(3, True), (6, False), (6, True)])
def test_gradcheck(which, H, learn_r_on):
    if which == "cpp":
        needs_ext()
    ops = _ext.load_extension() if which == "cpp" else fused.TorchOps
    fn, inputs = safe_gradcheck_case(ops, H, learn_r_on)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_kernel_params_in_cpp_equal_python(dtype, bias):
    """The one-call C++ kernel_params (used where no gradient is needed) gives bit for bit what
    kernel_bias and time_params64 give, clamps included (tau below TAU_MIN, r_on outside
    [R_ON_MIN, 1]); with a gradient needed it is the Python path, differentiable."""
    needs_ext()
    model = PhasedLSTM(3, 7, bias=bias, learn_r_on=True, dtype=dtype)
    with torch.no_grad():
        model.tau_l0[:3] = torch.tensor([0.0, -2.0, 1e-9])
        model.r_on_l0[:3] = torch.tensor([0.0, 1.5, 1e-7])
    ext = _ext.load_extension()
    with torch.no_grad():
        got = model.kernel_params(0, ext)
        want = (model.kernel_bias(0), *model.time_params64(0))
    assert (got[0] is None) == (not bias)
    for a, b in zip(got, want):
        if b is not None:
            assert a.dtype == b.dtype and a.is_contiguous() and torch.equal(a, b)
    assert got[1].dtype == torch.float64 and got[1][:3].min() > 0
    _, tau_g, _, r_g = model.kernel_params(0, ext)  # grad enabled: differentiable
    assert tau_g.requires_grad and r_g.requires_grad


def test_parametrized_weight_is_used():
    """A parametrization (here W_hh doubled) moves the name out of _parameters: the kernels
    must still get the parametrized weight, as the reference path does."""
    from torch.nn.utils import parametrize

    class Double(torch.nn.Module):
        def forward(self, w):
            return 2 * w

    model, x, t, state, lengths = make_case(torch.float64, train=False, num_layers=1)
    with torch.no_grad():
        want = model(x, t, state, lengths)[0]  # weights not yet doubled
        model.weight_hh_l0.mul_(2)
        doubled = model(x, t, state, lengths)[0]
        model.weight_hh_l0.div_(2)
    parametrize.register_parametrization(model, "weight_hh_l0", Double())
    with torch.no_grad():
        got = model(x, t, state, lengths)[0]
    torch.testing.assert_close(got, doubled)
    assert not torch.allclose(got, want)


def test_backend_validation():
    with pytest.raises(ValueError, match="backend"):
        PhasedLSTM(2, 3, backend="fast")
    with pytest.raises(ValueError, match="peephole"):
        PhasedLSTM(2, 3, peephole=True, backend="fused")
    model = PhasedLSTM(2, 3, peephole=True)  # auto: the reference loop
    assert model.fused_kernels(torch.zeros(1, 1, 2)) is None


def test_failed_build_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setattr(_ext, "_module", None)
    monkeypatch.setattr(_ext, "_SOURCE", _ext._SOURCE.with_name("missing.cpp"))
    monkeypatch.delenv("PLSTM_NO_EXTENSION", raising=False)
    model = PhasedLSTM(2, 3)
    x, t = torch.randn(1, 4, 2), torch.arange(4.0).unsqueeze(0)
    with pytest.warns(RuntimeWarning, match="reference path"):
        assert model.fused_kernels(x) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x, t)  # no second warning
    model.backend = "fused"
    with pytest.raises(ValueError, match="unavailable"):
        model(x, t)


def test_build_without_openmp_warns_and_runs_serially(monkeypatch):
    """A compiler without OpenMP fails the first variant; the serial build is used, with one
    warning that says so (build mocked: this checks the fallback, not the compiler)."""
    sentinel = object()

    def fake_build(name, cflags, ldflags):
        if "-fopenmp" in cflags:
            raise RuntimeError("error: unsupported option '-fopenmp'")
        return sentinel

    monkeypatch.setattr(_ext, "_module", None)
    monkeypatch.setattr(_ext, "_build", fake_build)
    monkeypatch.delenv("PLSTM_NO_EXTENSION", raising=False)
    with pytest.warns(RuntimeWarning, match="without OpenMP.*-fopenmp"):
        assert _ext.load_extension() is sentinel
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _ext.load_extension() is sentinel  # cached: no second build, no warning


@pytest.mark.parametrize("impl", ["cpp", "torch"])
def test_nan_timestamps_in_padding_do_not_leak(impl, monkeypatch):
    from plstm_repro.cells import fused

    if impl == "torch":
        monkeypatch.setattr(fused, "kernels", lambda device: fused.TorchOps)
    m = PhasedLSTM(1, 4, backend="fused")
    t = torch.tensor([[0.0, 1.0, float("nan")], [0.0, 1.0, 2.0]], dtype=torch.float64)
    out, (h, c) = m(torch.randn(2, 3, 1), t, lengths=torch.tensor([2, 3]))
    assert torch.isfinite(out).all() and torch.isfinite(h).all() and torch.isfinite(c).all()
