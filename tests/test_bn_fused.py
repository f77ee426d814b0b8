"""The fused BN-LSTM (C++ on the CPU, PyTorch ops for CUDA) equals the reference loop: outputs,
final state, running statistics and every gradient, in train and eval, with variable lengths."""

from __future__ import annotations

import copy

import pytest
import torch

from plstm_repro.cells import BNLSTM, _ext, bn_fused
from plstm_repro.cells.bn_lstm import SeqBatchNorm


def needs_ext():
    if _ext.load_extension() is None:
        pytest.skip("C++ kernels unavailable")


def make_case(dtype, train, lengths=True):
    """Two layers; H = 13 and F + 1 = 4 (not multiples of the SIMD width), B = 7 (partial row
    tiles), T = 11 > max_stat_steps = 6 (shared statistics slots), lengths with a step where
    every sample is padding (max length 10 < T) and one sample of length 1. Statistics and
    affine parameters away from their initial values, so that each one matters."""
    torch.manual_seed(0)
    model = BNLSTM(3, 13, num_layers=2, max_stat_steps=6, time_scale=0.1, dtype=dtype)
    with torch.no_grad():
        for layer in model.layers:
            for bn, eps in ((layer.bn_x, 1e-5), (layer.bn_h, 1e-3), (layer.bn_c, 1e-1)):
                bn.eps = eps  # distinct: each module's own eps must reach the kernels
                bn.weight.uniform_(0.3, 1.5)
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                if bn.bias is not None:
                    bn.bias.normal_()
    model.train(train)
    B, T = 7, 11
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, 3, generator=g, dtype=dtype)
    t = torch.rand(B, T, generator=g, dtype=torch.float64).cumsum(1) * 10
    state = tuple(torch.randn(2, B, 13, generator=g, dtype=dtype) for _ in range(2))
    lens = torch.tensor([10, 4, 1, 7, 10, 9, 2]) if lengths else None
    return model, x, t, state, lens


def run(model, x, t, state, lengths):
    """Outputs, final state, the gradients of a loss touching out, h_n and c_n, and the
    state_dict after the call (running statistics)."""
    x = x.clone().requires_grad_()
    h0, c0 = (s.clone().requires_grad_() for s in state)
    out, (h, c) = model(x, t, (h0, c0), lengths)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)
    ((out * w).sum() + (h ** 2).sum() + 0.5 * c.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grads.update(x=x.grad, h0=h0.grad, c0=c0.grad)
    model.zero_grad()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    return (out.detach(), h.detach(), c.detach()), grads, stats


def assert_same(case, backend="fused", grad=True):
    """The reference loop and ``backend`` from copies of one model, on the same inputs."""
    model, x, t, state, lengths = case
    tol = 1e-10 if x.dtype == torch.float64 else 5e-5
    ref, other = copy.deepcopy(model), copy.deepcopy(model)
    ref.backend, other.backend = "reference", backend
    if grad:
        r_out, r_g, r_stats = run(ref, x, t, state, lengths)
        o_out, o_g, o_stats = run(other, x, t, state, lengths)
    else:
        with torch.no_grad():
            r_out, r_stats = ref(x, t, state, lengths), ref.state_dict()
            o_out, o_stats = other(x, t, state, lengths), other.state_dict()
        r_out, o_out = (r_out[0], *r_out[1]), (o_out[0], *o_out[1])
    for a, b in zip(r_out, o_out):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)
    assert r_stats.keys() == o_stats.keys()
    for k in r_stats:
        torch.testing.assert_close(o_stats[k], r_stats[k], rtol=tol, atol=tol, msg=k)
    if grad:
        assert r_g.keys() == o_g.keys()
        for name in r_g:  # relative to each gradient's scale
            scale = r_g[name].abs().max().clamp_min(1e-12)
            err = ((o_g[name] - r_g[name]).abs().max() / scale).item()
            assert err < tol * 10, f"{name}: relative error {err:.2e}"
    return r_stats


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("train", [True, False])
def test_fused_cpu_equals_reference(dtype, train):
    needs_ext()
    case = make_case(dtype, train)
    before = case[0].state_dict()
    after = assert_same(case)
    for k in before:  # train moved every running statistic, eval none (the check above counts)
        assert torch.equal(after[k], before[k]) == (not train or "running" not in k), k


@pytest.mark.parametrize("train", [True, False])
def test_fused_cpu_without_lengths_and_without_grad(train):
    """Full batch (no mask), and the forward alone (no_grad: nothing saved; train still
    updates the running statistics)."""
    needs_ext()
    assert_same(make_case(torch.float64, train, lengths=False))
    assert_same(make_case(torch.float64, train), grad=False)


def test_fused_cpu_one_layer_input_wider_than_a_vector():
    """F = 20 inputs (the N-MNIST layer has 42): several vectors of W_ih per product."""
    needs_ext()
    torch.manual_seed(3)
    model = BNLSTM(19, 9, max_stat_steps=4, dtype=torch.float64).train()
    x = torch.randn(5, 6, 19, dtype=torch.float64)
    t = torch.rand(5, 6, dtype=torch.float64).cumsum(1)
    state = tuple(torch.randn(1, 5, 9, dtype=torch.float64) for _ in range(2))
    assert_same((model, x, t, state, torch.tensor([6, 3, 6, 1, 5])))


def test_fused_cpu_with_shifted_input_norms():
    """If BN_x and BN_h get shifts beta (affine_bias, a possible initialisation change), the
    fused path adds them to the gates' bias, as the loop adds them to the gates."""
    needs_ext()
    model, x, t, state, lengths = make_case(torch.float64, True)
    for layer in model.layers:
        for name in ("bn_x", "bn_h"):
            bn = SeqBatchNorm(4 * 13, 6, affine_bias=True, dtype=torch.float64)
            with torch.no_grad():
                bn.bias.normal_()
            setattr(layer, name, bn)
    assert_same((model, x, t, state, lengths))


@pytest.mark.parametrize("train", [True, False])
def test_torch_ops_path_equals_reference(monkeypatch, train):
    """The PyTorch-ops implementation (the CUDA path), run on CPU tensors."""
    monkeypatch.setattr(bn_fused, "kernels", lambda device: bn_fused.TorchOps)
    assert_same(make_case(torch.float64, train))
    assert_same(make_case(torch.float64, train), grad=False)


def gradcheck_case(ops, train):
    T, B, F, H = 4, 3, 2, 3
    g = torch.Generator().manual_seed(5)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()

    x, w_ih, w_hh, bias = rand(T, B, F), rand(4 * H, F), rand(4 * H, H, scale=0.5), rand(4 * H)
    gx, gh, gc, bc = rand(4 * H), rand(4 * H), rand(H), rand(H)
    h0, c0 = rand(B, H), rand(B, H)
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    running = [] if train else [
        v.to(torch.float64) for v in (torch.randn(3, 4 * H), torch.rand(3, 4 * H) + 0.5,
                                      torch.randn(3, 4 * H), torch.rand(3, 4 * H) + 0.5,
                                      torch.randn(3, H), torch.rand(3, H) + 0.5)]
    inputs = [x, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0]

    def fn(*a):
        return bn_fused.FusedBNLSTM.apply(*a, mask, running, (1e-5, 1e-3, 1e-2), train, ops)[:3]
    return fn, inputs


@pytest.mark.parametrize("which", ["cpp", "torch"])
@pytest.mark.parametrize("train", [True, False])
def test_gradcheck(which, train):
    if which == "cpp":
        needs_ext()
    ops = _ext.load_extension() if which == "cpp" else bn_fused.TorchOps
    fn, inputs = gradcheck_case(ops, train)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_backend_choice_and_checkpoints(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        BNLSTM(2, 3, backend="fast")
    model = BNLSTM(2, 3)
    x = torch.zeros(1, 2, 2)
    assert model.backend == "auto"
    # the state_dict is what it was before the fused path existed: checkpoints still load
    keys = {f"layers.0.{k}" for k in (
        "weight_ih", "weight_hh", "bias", "bn_x.weight", "bn_x.running_mean",
        "bn_x.running_var", "bn_h.weight", "bn_h.running_mean", "bn_h.running_var",
        "bn_c.weight", "bn_c.bias", "bn_c.running_mean", "bn_c.running_var")}
    assert set(model.state_dict()) == keys
    BNLSTM(2, 3, backend="reference").load_state_dict(model.state_dict())
    assert model.fused_kernels(x.double()) is not None or _ext.load_extension() is None
    assert model.fused_kernels(x.half()) is None  # auto: other dtypes take the loop
    with pytest.raises(ValueError, match="unavailable"):
        BNLSTM(2, 3, backend="fused").fused_kernels(x.half())
    # no build: auto falls back to the loop, "fused" says why it cannot run
    monkeypatch.setattr(bn_fused, "kernels", lambda device: None)
    assert model.fused_kernels(x) is None
    model(x, torch.zeros(1, 2))
    model.backend = "fused"
    with pytest.raises(ValueError, match="could not be built"):
        model(x, torch.zeros(1, 2))


def ragged_tail_grads(backend: str, long: int):
    """Issue 22: B = 16, T = 600, all but ``long`` samples end at step 30. The loss and the
    parameters' gradient norm of the BN-LSTM in train()."""
    torch.manual_seed(0)
    model = BNLSTM(41, 32, time_scale=0.01, backend=backend)
    B, T = 16, 600
    x = torch.randn(B, T, 41)
    t = torch.arange(T, dtype=torch.float64).expand(B, T)
    lengths = torch.full((B,), 30)
    lengths[:long] = T
    _, (h, _) = model(x, t, lengths=lengths)
    loss = h.pow(2).sum()
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    return float(loss.detach()), grads


@pytest.mark.parametrize("long", [2, 3])
def test_a_tail_of_two_or_three_samples_keeps_the_gradient_sane(long):
    """Per-step batch statistics over 2-3 samples multiplied the gradient at every tail step:
    its norm was 1e11-1e17 here (13 with 5 samples left). Such steps now use the last
    statistics over enough samples, in both backends alike."""
    needs_ext()
    loss_f, g_f = ragged_tail_grads("fused", long)
    loss_r, g_r = ragged_tail_grads("reference", long)
    assert torch.isfinite(g_f).all() and float(g_f.norm()) < 1e3, float(g_f.norm())
    assert loss_f == pytest.approx(loss_r, rel=1e-4)
    torch.testing.assert_close(g_f, g_r, rtol=1e-3, atol=1e-3 * float(g_r.abs().max()))


def test_borrowed_tail_statistics_in_both_kernels():
    """min_count 3 on the mask's counts 3, 3, 2, 1: steps 2 and 3 normalise with step 1's
    moments as constants and report a count of 0; the C++ kernels and the PyTorch ops agree
    (outputs and every gradient; the reference loop is compared in the test above)."""
    needs_ext()
    from plstm_repro.cells.compiled import CompiledOps

    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    grads = []
    # the C++ kernels, the PyTorch ops and the GPU path's step functions (run eagerly here)
    for ops in (_ext.load_extension(), bn_fused.TorchOps, CompiledOps(compile=False)):
        _, inputs = gradcheck_case(ops, True)
        res = bn_fused.FusedBNLSTM.apply(*inputs, mask, [], (1e-5, 1e-3, 1e-2), True, ops, 3)
        assert res[9].tolist() == [3.0, 3.0, 0.0, 0.0]  # borrowed steps skip the running stats
        assert torch.equal(res[5][2], res[5][1]) and torch.equal(res[7][3], res[7][1])
        (res[0].sum() + res[2].pow(2).sum()).backward()
        grads.append([res[0].detach()] + [v.grad for v in inputs])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            torch.testing.assert_close(a, b)


def test_steps_past_max_steps_enter_the_last_slot_pooled():
    """Steps 1-4 share slot 1 of max_steps 2: their moments enter it pooled (counts 8, 8, 8, 1),
    not whichever came last (a 1-sample tail step of variance 0)."""
    bn = SeqBatchNorm(1, 2, affine_bias=False, dtype=torch.float64)
    means = torch.tensor([[0.0], [1.0], [2.0], [3.0], [5.0]], dtype=torch.float64)
    vars_ = torch.tensor([[1.0], [1.0], [2.0], [3.0], [0.0]], dtype=torch.float64)
    n = torch.tensor([8.0, 8.0, 8.0, 8.0, 1.0], dtype=torch.float64)
    bn.update_running([(torch.tensor([0, 1, 1, 1, 1]), means, vars_, n)])
    w = n[1:, None]
    pm = (w * means[1:]).sum() / w.sum()
    pv = (w * (vars_[1:] + (means[1:] - pm) ** 2)).sum() / w.sum()
    assert float(bn.running_mean[1]) == pytest.approx(0.1 * float(pm))
    assert float(bn.running_var[1]) == pytest.approx(0.9 + 0.1 * float(pv))  # biased, as trained
    assert float(bn.running_mean[0]) == pytest.approx(0.0)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_eval_is_the_trained_network_past_step_1000(backend):
    """An N-MNIST recording has ~5,000 events. With the running statistics set to one batch's
    moments (momentum 1), the eval output on that batch is the train-mode output at every step:
    past step 1,000 too, where the inputs' statistics keep drifting (time is an input), so each
    step needs its own slot, not one pooled over steps 1,000-1,499; and the variance kept is the
    biased one training used (the unbiased one, x 64/63, changed the output by 0.42 at step
    562: the recurrence compounds a 0.8% change of every normalised value)."""
    if backend == "fused":
        needs_ext()
    torch.manual_seed(0)
    model = BNLSTM(2, 8, time_scale=0.01, backend=backend, dtype=torch.float64)
    bns = [bn for layer in model.layers for bn in (layer.bn_x, layer.bn_h, layer.bn_c)]
    for bn in bns:
        bn.momentum = 1.0
    B, T = 64, 1500
    x = torch.randn(B, T, 2, dtype=torch.float64)
    t = torch.rand(B, T, dtype=torch.float64).cumsum(1)
    with torch.no_grad():
        trained, _ = model.train()(x, t)
        evaluated, _ = model.eval()(x, t)
    err = (trained - evaluated).abs().amax(dim=(0, 2))  # rounding grows to ~1e-6 by step 1500
    worst = int(err.argmax())
    assert float(err[worst]) < 1e-3, f"step {worst}: {float(err[worst]):.3g}"


def test_grown_statistics_slots_survive_a_checkpoint():
    """Slots grown in training (T = 1,200 > the 1,000 allocated up front) load into a fresh
    model, which then evaluates exactly as the trained one."""
    torch.manual_seed(0)
    model = BNLSTM(2, 4, backend="reference")
    x, t = torch.randn(3, 1200, 2), torch.rand(3, 1200, dtype=torch.float64).cumsum(1)
    with torch.no_grad():
        model.train()(x, t)
    assert model.layers[0].bn_h.running_mean.shape[0] == 1200
    fresh = BNLSTM(2, 4, backend="reference")
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x, t)[0], model.eval()(x, t)[0])


def test_refresh_statistics_are_the_current_weights_moments():
    """fit() refreshes a batch-norm model's running statistics after every epoch: the mean of
    the given batches' moments (each batch alike), whatever the moving averages held, so that
    eval on a refreshed batch is the train-mode network; momentum and mode are restored."""
    from plstm_repro.cells.bn_lstm import refresh_statistics

    torch.manual_seed(0)
    model = BNLSTM(2, 8, time_scale=0.01, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    a, b = ((torch.randn(16, 40, 2, generator=g, dtype=torch.float64),
             torch.rand(16, 40, generator=g, dtype=torch.float64).cumsum(1)) for _ in range(2))
    with torch.no_grad():
        model.train()(a[0] * 3 + 1, a[1])  # moving averages of other data
    model.eval()
    bn = model.layers[0].bn_h
    stats = []
    for batches in ([a], [b], [a, b]):
        assert refresh_statistics(model, batches)
        stats.append((bn.running_mean.clone(), bn.running_var.clone()))
    assert not model.training and bn.momentum == 0.1
    torch.testing.assert_close(stats[2][0][:40], (stats[0][0][:40] + stats[1][0][:40]) / 2)
    torch.testing.assert_close(stats[2][1][:40], (stats[0][1][:40] + stats[1][1][:40]) / 2)
    refresh_statistics(model, [b])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(*b)[0], model.train()(*b)[0])
    assert not refresh_statistics(torch.nn.Linear(2, 2), [(torch.zeros(1, 2),)])


def test_refresh_statistics_pool_each_step_over_the_batches_that_reach_it():
    """A step only some batches reach (the long recordings' tails) gets their moments alone,
    not a running mean over all the batches that leaves most of the old moving average there."""
    from plstm_repro.cells.bn_lstm import refresh_statistics

    torch.manual_seed(0)
    model = BNLSTM(2, 8, time_scale=0.01, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    long = (torch.randn(16, 40, 2, generator=g, dtype=torch.float64),
            torch.rand(16, 40, generator=g, dtype=torch.float64).cumsum(1))
    short = (long[0][:, :20] * 2 - 1, long[1][:, :20])
    bn = model.layers[0].bn_h
    refresh_statistics(model, [long])
    alone = bn.running_mean.clone(), bn.running_var.clone()
    with torch.no_grad():
        model.train()(long[0] * 3 + 1, long[1])  # moving averages of other data
    assert not torch.allclose(bn.running_mean[20:40], alone[0][20:40])
    refresh_statistics(model, [short, long])
    torch.testing.assert_close(bn.running_mean[20:40], alone[0][20:40])
    torch.testing.assert_close(bn.running_var[20:40], alone[1][20:40])
