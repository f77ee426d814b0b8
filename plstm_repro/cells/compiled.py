r"""The GPU recurrence: per step one GEMM and ONE fused pointwise function, forward and backward.

Same algorithm and signatures as :class:`.fused.TorchOps` (Phased LSTM) and
:class:`.bn_fused.TorchOps` (BN-LSTM), so :class:`.fused.FusedPLSTM` and
:class:`.bn_fused.FusedBNLSTM` run it unchanged. The difference is the step: up front the input
projection of all steps in one GEMM, then per step

1. ``torch.addmm`` (the recurrent GEMM, bias = that step's input projection), and
2. one pointwise function, compiled by inductor, torch.compile's compiler (Triton on CUDA, C++ on
   the CPU), that does everything else of the step: the gates, the time gate (eq. 6, phase in
   float64) and eq. 7-10, the mask of padded steps and the leak (Phased LSTM); the batch moments,
   normalisations and gates (BN-LSTM). On the CPU each step function is one generated kernel;
   on CUDA the BN-LSTM's batch moments may take inductor more than one.

The step functions are traced and handed to inductor directly (:func:`_build`), once per shape:
called through ``torch.compile``'s frame each call costs ~100 us of Python here (guards,
wrappers), which over ~3,000 steps would pace the GPU; direct, ~25 us. ``torch.compile`` is the
fallback where that route fails. Not done: CUDA-graph capture of the step loop.

The backward is the hand-written BPTT of :mod:`.fused` / :mod:`.bn_fused` in the same two calls
per step (the pointwise part, then ``addmm`` for the carry to h_{n-1}); the time-gate gradients
(d tau, d shift, d r_on) accumulate per sample inside the pointwise function and are summed over
the batch once at the end. The step functions are plain PyTorch: ``CompiledOps(compile=False)``
runs the very same code eagerly (fast tests of every configuration), ``compile=True`` (the
default) the inductor build of it. Per-step outputs are collected in lists and stacked once at
the end (one copy per sequence, not one per step).

The leak is passed as a float64 0-d tensor and masks always as bool tensors (all true when there
is no padding), so train/eval and padded/full batches share one compiled graph per shape.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .compiled_steps import STEPS, detached
from .functional import input_moments, running_at_steps, weight_grads


@functools.cache
def _compiled(name: str):
    """torch.compile of one step function (the fallback of :func:`_inductor_step`)."""
    return torch.compile(STEPS[name], dynamic=False, fullgraph=True)


_BUILT: dict = {}  # (name, signature of the arguments) -> (compiled graph, tensor positions)


def _signature(args) -> tuple:
    return tuple((tuple(a.shape), a.stride(), a.dtype, a.device) if isinstance(a, Tensor)
                 else ("const", a) for a in args)


def _build(name: str, args):
    """Trace step function ``name`` for tensors like ``args`` to an aten graph (make_fx with
    inductor's decompositions; non-tensor arguments baked in) and compile it with inductor's
    compile_fx_inner. Called per step, that graph costs ~25 us of Python on this CPU against
    ~100 us through torch.compile's frame (guards, wrappers): over ~3,000 steps that overhead,
    not the GPU, would set the pace."""
    from torch._inductor.compile_fx import compile_fx_inner
    from torch._inductor.decomposition import select_decomp_table
    from torch.fx.experimental.proxy_tensor import make_fx

    pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    fn, full = STEPS[name], list(args)

    def tensors_only(*tensors):
        for i, v in zip(pos, tensors):
            full[i] = v
        return fn(*full)

    example = [args[i] for i in pos]
    with torch.no_grad():
        graph = make_fx(tensors_only, decomposition_table=select_decomp_table())(*example)
        return compile_fx_inner(graph, example), pos


def _inductor_step(name: str, args):
    """The compiled step ``name`` for arguments like ``args`` (every step of a loop has the
    same shapes, strides and constants; the generated code asserts sizes and strides), built
    once per signature and process; torch.compile's build where the direct route fails (its
    entry points are torch internals)."""
    key = (name, _signature(args))
    built = _BUILT.get(key)
    if built is None:
        try:
            built = _build(name, args)
        except (ImportError, AttributeError, TypeError) as err:  # another torch's internals
            import warnings

            warnings.warn(f"plstm_repro: inductor's direct build failed ({err!r}); using "
                          "torch.compile (more Python per step)", RuntimeWarning, stacklevel=3)
            built = (_compiled(name), None)
        _BUILT[key] = built
    graph, pos = built
    if pos is None:
        return graph
    return lambda *a: graph([a[i] for i in pos])


def _valid_rows(mask: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The mask [T, B] (all valid where ``mask`` is empty), as [T, B, 1], and its counts [T]."""
    T, B = x.shape[:2]
    m = mask if mask.numel() else torch.ones(T, B, dtype=torch.bool, device=x.device)
    return m, m.unsqueeze(-1), m.sum(1).to(x.dtype)


def _recurrent_moments(x: Tensor, H: int, running, eps_h, eps_c, train: bool) -> list[Tensor]:
    """Per step [T, K], what the BN-LSTM step function is given for the recurrent projection
    and the cell: (mean, var, rsqrt) of each. Zeros in training (the step computes its own);
    the running statistics in eval (steps past the last slot use the last one; var unused)."""
    T, G = x.shape[0], 4 * H
    if train:
        return [x.new_zeros(T, G)] * 3 + [x.new_zeros(T, H)] * 3
    mh, rh = running_at_steps(running[2], running[3], T, eps_h)
    mc, rc = running_at_steps(running[4], running[5], T, eps_c)
    return [mh, mh, rh, mc, mc, rc]


class CompiledOps:
    """The Phased LSTM and BN-LSTM recurrences as (GEMM + one compiled pointwise) per step, with
    the signatures of :class:`.fused.TorchOps` and :class:`.bn_fused.TorchOps`.
    ``compile=False`` runs the same step functions eagerly (tests)."""

    def __init__(self, compile: bool = True):
        self.compile = compile

    def _step(self, name: str, args):
        """The step function for a loop whose steps take arguments like ``args``."""
        return _inductor_step(name, args) if self.compile else STEPS[name]

    def __repr__(self) -> str:
        return f"CompiledOps(compile={self.compile})"

    # ------------------------------------------------------------------------- Phased LSTM
    def fused_forward(self, x, t, mask, w_ih, bias, w_hh, tau, shift, r, h0, c0, leak, save):
        x, w_ih, bias, w_hh, tau, shift, r, h0, c0 = detached(x, w_ih, bias, w_hh, tau, shift, r,
                                                           h0, c0)
        T, B, F = x.shape
        H = w_hh.shape[1]
        step = None
        m = mask if mask.numel() else torch.ones(T, B, dtype=torch.bool, device=x.device)
        leak_t = torch.tensor(float(leak), dtype=torch.float64, device=x.device)
        flat = x.reshape(T * B, F)  # the input projection of all steps in one GEMM
        xw = (torch.addmm(bias, flat, w_ih.t()) if bias.numel() else flat @ w_ih.t())
        xw = xw.view(T, B, 4 * H)
        h, c, wt = h0, c0, w_hh.t()
        hs, cs, acts = [], [], []
        # unbind once: indexing inside the loop costs a view (~2 us of Python) per tensor per step
        for xw_n, t_n, m_n in zip(xw.unbind(0), t.unbind(0), m.unbind(0)):
            args = (torch.addmm(xw_n, h, wt), h, c, t_n, m_n, tau, shift, r, leak_t)
            step = step or self._step("plstm_fwd", args)
            h, c, a = step(*args)
            hs.append(h)
            if save:
                cs.append(c)
                acts.append(a)
        out = torch.stack(hs)
        if not save:
            return [out, c.clone()]
        # The backward recomputes k and its branch from t: in the slots of (k, branch code) it
        # gets the mask and an empty placeholder (FusedPLSTM saves whatever comes here).
        return [out, c.clone(), torch.stack(cs), torch.stack(acts), m,
                torch.empty(0, dtype=torch.int8, device=x.device)]

    def fused_backward(self, gout, ghn, gcn, out, call, acts, m, code, x, t, w_ih, w_hh, tau,
                       shift, r, h0, c0, leak, need_r):
        """As TorchOps.fused_backward, with ``m`` the mask [T, B] that fused_forward returned
        in the slot of k (``code`` unused)."""
        out, call, acts, x, w_ih, w_hh, tau, shift, r, h0, c0 = detached(
            out, call, acts, x, w_ih, w_hh, tau, shift, r, h0, c0)
        T, B, H = out.shape
        step = None
        leak_t = torch.tensor(float(leak), dtype=torch.float64, device=x.device)
        acc = [torch.zeros(B, H, dtype=torch.float64, device=x.device) for _ in range(3)]
        dh, dc = ghn, gcn
        das = [None] * T
        hps, cps = [h0, *out.unbind(0)[:-1]], [c0, *call.unbind(0)[:-1]]
        gouts, actss, ts, ms = gout.unbind(0), acts.unbind(0), t.unbind(0), m.unbind(0)
        for n in range(T - 1, -1, -1):
            args = (dh, gouts[n], dc, actss[n], hps[n], cps[n], ts[n], ms[n], tau, shift, r,
                    leak_t, *acc)
            step = step or self._step("plstm_bwd", args)
            da, keep, dc, *acc = step(*args)
            dh = torch.addmm(keep, da, w_hh)
            das[n] = da
        dx, dw_ih, db, dw_hh = weight_grads(torch.stack(das), x, w_ih, h0, out)
        dtau = -acc[0].sum(0) / (tau * tau)
        dshift = -acc[1].sum(0) / tau
        dr = acc[2].sum(0) if need_r else torch.zeros_like(tau)
        return [dx, dw_ih, db, dw_hh, dtau, dshift, dr, dh, dc]

    # ----------------------------------------------------------------------------- BN-LSTM
    def bn_forward(self, x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, running, eps_x,
                   eps_h, eps_c, train, save, min_count):
        x, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0 = detached(x, w_ih, w_hh, bias, gx, gh, gc, bc,
                                                             h0, c0)
        T, B, F = x.shape
        H = w_hh.shape[1]
        G = 4 * H
        step = None
        _, w, counts = _valid_rows(mask, x)
        den = counts.clamp_min(1.0).unsqueeze(-1)  # [T, 1]
        # a ragged batch's tail (after step L: fewer than min_count valid samples) normalises
        # with step L's moments, as constants (cells.bn_fused.min_stat_count says why)
        own = counts >= min_count if train else torch.ones_like(counts, dtype=torch.bool)
        L = int(own.sum()) - 1
        ax = (x.reshape(T * B, F) @ w_ih.t()).view(T, B, G)
        empty = x.new_empty(0, G)
        mx, vx, rx = input_moments(ax, w, den, eps_x, L, train, running, empty)  # every step
        xs = torch.where(w, (ax - mx.unsqueeze(1)) * rx.unsqueeze(1), 0.0)
        h, c, wt = h0, c0, w_hh.t()
        keep = {k: [] for k in ("out", "hh", "a", "ch", "t", "c", "mh", "vh", "rh", "mc", "vc",
                                "rc")}
        own = own.unsqueeze(-1)  # [T, 1]
        given = _recurrent_moments(x, H, running, eps_h, eps_c, train)
        for n in range(T):
            if n == L + 1 and L >= 0:  # the tail borrows step L's moments
                given = [[keep[k][L]] * T for k in ("mh", "vh", "rh", "mc", "vc", "rc")]
            args = (h @ wt, xs[n], h, c, w[n], den[n], own[n], bias, gx, gh, gc, bc,
                    *(v[n] for v in given), eps_h, eps_c, train)
            step = step or self._step("bn_fwd", args)
            r = step(*args)
            h, c = r[0], r[1]
            keep["out"].append(r[2])
            keep["c"].append(c)
            if save:
                for k, v in zip(("hh", "a", "ch", "t"), r[3:7]):
                    keep[k].append(v)
            if train or save:
                for k, v in zip(("mh", "vh", "rh", "mc", "vc", "rc"), r[7:]):
                    keep[k].append(v)
        st = {k: torch.stack(v) if v else None for k, v in keep.items()}
        if train:
            moments = [mx, vx, st["mh"], st["vh"], st["mc"], st["vc"]]
        else:
            moments = [empty, empty, empty, empty, empty[:, :H], empty[:, :H]]
        if train:  # the tail's moments are not its own: the running statistics ignore them
            counts = torch.where(own[:, 0], counts, 0.0)
        res = [st["out"], h.clone(), c.clone(), *moments, counts]
        if save:
            res += [xs, st["hh"], st["a"], st["c"], st["ch"], st["t"], rx, st["rh"], st["rc"]]
        return res

    def bn_backward(self, gout, ghn, gcn, x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, out,
                    saved, train, min_count):
        xs, hs, acts, cs, chat, th, rx, rh, rc = detached(*saved)
        x, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, out = detached(x, w_ih, w_hh, bias, gx, gh, gc,
                                                                  bc, h0, c0, out)
        T, B, F = x.shape
        H = w_hh.shape[1]
        G = 4 * H
        step = None
        _, w, counts = _valid_rows(mask, x)
        own = (counts >= min_count).unsqueeze(-1)  # [T, 1]: steps with their own moments
        inv = (1.0 / counts.clamp_min(1.0)).unsqueeze(-1)  # [T, 1]
        f64 = {"dtype": torch.float64, "device": x.device}
        acc = [torch.zeros(H, **f64), torch.zeros(H, **f64), torch.zeros(G, **f64),
               torch.zeros(G, **f64), torch.zeros(G, **f64)]
        dh, dc = ghn, gcn
        dax, dah = [None] * T, [None] * T
        for n in range(T - 1, -1, -1):
            cp = cs[n - 1] if n else c0
            args = (dh, gout[n], dc, acts[n], th[n], chat[n], cp, xs[n], hs[n], rx[n], rh[n],
                    rc[n], w[n], inv[n], own[n], gx, gh, gc, *acc, train)
            step = step or self._step("bn_bwd", args)
            dxn, dhn, keep, dc, *acc = step(*args)
            dh = torch.addmm(keep, dhn, w_hh)
            dax[n], dah[n] = dxn, dhn
        hprev = torch.cat([h0.unsqueeze(0), out[:-1]], 0).reshape(T * B, H)
        dah2, dax2 = torch.stack(dah).reshape(T * B, G), torch.stack(dax).reshape(T * B, G)
        dt = x.dtype
        d_gc, d_bc, d_b, d_gx, d_gh = (a.to(dt) for a in acc)
        return [(dax2 @ w_ih).view(T, B, F), dax2.t() @ x.reshape(T * B, F), dah2.t() @ hprev,
                d_b, d_gx, d_gh, d_gc, d_bc, dh, dc]


def can_compile(device: torch.device) -> bool:
    """Whether torch.compile has a backend for ``device`` here (Triton for CUDA; the C++ one,
    which needs only a compiler, for the CPU)."""
    import importlib.util

    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return device.type == "cpu"


def gpu_ops(device: torch.device, fallback):
    """The recurrence for a non-CPU ``device``: CompiledOps where it can compile, else
    ``fallback`` (the plain PyTorch-ops implementation)."""
    return CompiledOps() if can_compile(device) else fallback
