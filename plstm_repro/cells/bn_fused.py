r"""Fused BN-LSTM recurrence: one layer over a sequence, hand-written BPTT.

The forward is :class:`~plstm_repro.cells.bn_lstm.BNLSTM`'s (Cooijmans et al. 2016) step by
step; per step n, over the samples still valid there (N of them):

.. math::
    \hat a = (a - \mu_n) / \sqrt{\sigma^2_n + \epsilon}, \qquad
    z = (\gamma_x \hat a_x + b) + \gamma_h \hat a_h, \qquad
    c_n = \sigma(z_f) c_{n-1} + \sigma(z_i) \tanh(z_g), \qquad
    h_n = \sigma(z_o) \tanh(\gamma_c \hat c_n + \beta_c)

with (mu, sigma^2) the step's batch moments in ``train()`` (returned, so that the caller
updates the running statistics exactly as the reference loop does), the running statistics of
step min(n, slots - 1) in ``eval()`` (a slot per step seen in training). The backward is BPTT through the same steps;
through each batch norm with batch moments

.. math::
    \partial a = \gamma \, r \, (\partial y - \overline{\partial y} - \hat a \,
    \overline{\partial y \, \hat a}), \qquad r = 1 / \sqrt{\sigma^2 + \epsilon}

(means over the valid samples of the step), and ``gamma r dy`` with running statistics. A step
with fewer valid samples than ``min_count`` (a ragged batch's tail; see
:func:`min_stat_count`) normalises with the moments of the last
step that had enough, as constants (``gamma r dy`` there too), and returns a count of 0.

Two implementations of ``bn_forward`` / ``bn_backward`` with the same signatures: the C++
kernels on the CPU (``csrc/bnlstm_ops.cpp``, built with the Phased LSTM's by :mod:`._ext`),
and :class:`TorchOps` in PyTorch ops for CUDA (and as a CPU fallback that tests exercise).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._ext import load_extension
from .functional import input_moments, step_moments


def min_stat_count(sequences: int) -> int:
    """Fewest valid samples a step needs for its own batch statistics, of a batch holding
    ``sequences`` non-empty sequences: a quarter of them, at least 2 (at most all of them, so
    that the first step always has its own)."""
    return min(sequences, max(2, math.ceil(sequences / 4)))


class TorchOps:
    """The fused algorithm in PyTorch ops, with the C++ kernels' signatures (used on CUDA)."""

    @staticmethod
    def bn_forward(x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, running, eps_x, eps_h,
                   eps_c, train, save, min_count):
        T, B, F = x.shape
        H = w_hh.shape[1]
        G = 4 * H
        m = mask if mask.numel() else None
        w = None if m is None else m.unsqueeze(-1)  # [T, B, 1]
        counts = (x.new_full((T,), float(B)) if m is None else m.sum(1).to(x.dtype))
        den = counts.clamp_min(1.0).unsqueeze(-1)  # [T, 1]
        own = counts >= min_count  # a prefix of the steps
        L = int(own.sum()) - 1  # the last step with its own moments (-1: none)
        ax = (x.reshape(T * B, F) @ w_ih.t()).view(T, B, G)
        empty = x.new_empty(0, G)
        mx, vx, rx = input_moments(ax, w, den, eps_x, L, train, running, empty)
        xs = (ax - mx.unsqueeze(1)) * rx.unsqueeze(1)
        if w is not None:
            xs = torch.where(w, xs, 0.0)
        out = x.new_empty(T, B, H)
        hs, acts, chat, th = (x.new_zeros(T, B, n) for n in (G, G, H, H))
        cs = x.new_empty(T, B, H)
        rh, rc = x.new_empty(T, G), x.new_empty(T, H)
        mh, vh = (x.new_empty(T, G), x.new_empty(T, G)) if train else (empty, empty)
        mc, vc = (x.new_empty(T, H), x.new_empty(T, H)) if train else (empty[:, :H], empty[:, :H])
        h, c = h0, c0
        for n in range(T):
            wn = None if w is None else w[n]
            ah = h @ w_hh.t()
            mhn, rhn = step_moments(ah, wn, den[n], eps_h, n, L, train, (mh, vh, rh), running[2:4])
            hh = (ah - mhn) * rhn
            z = (xs[n] * gx + bias) + hh * gh
            zi, zf, zg, zo = z.chunk(4, 1)
            i, f, g, o = torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)
            cn = f * c + i * g
            mcn, rcn = step_moments(cn, wn, den[n], eps_c, n, L, train, (mc, vc, rc), running[4:6])
            ch = (cn - mcn) * rcn
            t = torch.tanh(ch * gc + bc)
            hn = o * t
            a = torch.cat([i, f, g, o], 1)
            if wn is None:
                h, c, out[n] = hn, cn, hn
            else:
                h, c = torch.where(wn, hn, h), torch.where(wn, cn, c)
                out[n] = torch.where(wn, hn, 0.0)
                hh, a, ch, t = (torch.where(wn, v, 0.0) for v in (hh, a, ch, t))
            rh[n], rc[n] = rhn, rcn
            if save:
                hs[n], acts[n], chat[n], th[n], cs[n] = hh, a, ch, t, c
        if train:
            counts = torch.where(own, counts, 0.0)
        res = [out, h.clone(), c.clone(), mx if train else empty, vx, mh, vh, mc, vc, counts]
        if save:
            res += [xs, hs, acts, cs, chat, th, rx, rh, rc]
        return res

    @staticmethod
    def bn_backward(gout, ghn, gcn, x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, out,
                    saved, train, min_count):
        xs, hs, acts, cs, chat, th, rx, rh, rc = saved
        T, B, F = x.shape
        H = w_hh.shape[1]
        G = 4 * H
        m = mask if mask.numel() else None
        counts = (x.new_full((T,), float(B)) if m is None else m.sum(1).to(x.dtype))
        inv = 1.0 / counts.clamp_min(1.0)
        dax, dah = x.new_empty(T, B, G), x.new_empty(T, B, G)
        dh, dc = ghn.clone(), gcn.clone()
        d_gc, d_bc = x.new_zeros(H, dtype=torch.float64), x.new_zeros(H, dtype=torch.float64)
        d_b, d_gx, d_gh = (x.new_zeros(G, dtype=torch.float64) for _ in range(3))
        batch = [train and float(counts[n]) >= min_count for n in range(T)]
        for n in range(T - 1, -1, -1):
            wn = None if m is None else m[n].unsqueeze(-1)
            i, f, g, o = acts[n].chunk(4, 1)
            t, ch = th[n], chat[n]
            cp = cs[n - 1] if n else c0
            dhv = dh + gout[n]
            if wn is not None:
                dhv = torch.where(wn, dhv, 0.0)
            dy = dhv * o * (1 - t * t)  # d of bn_c's output (0 on padded rows)
            dzo = dhv * t * o * (1 - o)
            s1c, s2c = dy.sum(0), (dy * ch).sum(0)
            dv = dy - s1c * inv[n] - ch * (s2c * inv[n]) if batch[n] else dy
            dcn = dc + gc * rc[n] * dv
            dz = torch.cat([dcn * g * i * (1 - i), dcn * cp * f * (1 - f),
                            dcn * i * (1 - g * g), dzo], 1)
            dcp = dcn * f
            if wn is not None:
                dz = torch.where(wn, dz, 0.0)
                dcp = torch.where(wn, dcp, dc)
            s1, s2x, s2h = dz.sum(0), (dz * xs[n]).sum(0), (dz * hs[n]).sum(0)
            ux = dz - s1 * inv[n] - xs[n] * (s2x * inv[n]) if batch[n] else dz
            uh = dz - s1 * inv[n] - hs[n] * (s2h * inv[n]) if batch[n] else dz
            dxn, dhn = gx * rx[n] * ux, gh * rh[n] * uh
            if wn is not None:
                dxn, dhn = torch.where(wn, dxn, 0.0), torch.where(wn, dhn, 0.0)
            dax[n], dah[n] = dxn, dhn
            carry = dhn @ w_hh
            dh = carry if wn is None else torch.where(wn, carry, dh)
            dc = dcp
            d_gc += s2c
            d_bc += s1c
            d_b += s1
            d_gx += s2x
            d_gh += s2h
        hprev = torch.cat([h0.unsqueeze(0), out[:-1]], 0).reshape(T * B, H)
        dah2, dax2 = dah.reshape(T * B, G), dax.reshape(T * B, G)
        dt = x.dtype
        return [(dax2 @ w_ih).view(T, B, F), dax2.t() @ x.reshape(T * B, F), dah2.t() @ hprev,
                d_b.to(dt), d_gx.to(dt), d_gh.to(dt), d_gc.to(dt), d_bc.to(dt), dh, dc]


def kernels(device: torch.device):
    """The C++ kernels for CPU tensors (None when they cannot be built); elsewhere the compiled
    recurrence of :mod:`.compiled` where torch.compile can build it, else TorchOps."""
    if device.type == "cpu":
        return load_extension()
    from .compiled import gpu_ops

    return gpu_ops(device, TorchOps)


class FusedBNLSTM(torch.autograd.Function):
    """(x [T,B,F], w_ih, w_hh, bias, gamma_x, gamma_h, gamma_c, beta_c, h0, c0, mask [T,B] bool
    or empty, running (6 tensors in eval, none in train), eps (x, h, c), train, ops) ->
    (out [T,B,H], h_n, c_n, mean_x, var_x, mean_h, var_h, mean_c, var_c, counts); the last
    seven are the batch moments (train; not differentiable)."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, mask, running, eps, train,
                ops, min_count=0):
        res = ops.bn_forward(x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, running, *eps,
                             train, True, min_count)
        out = res[0]
        ctx.save_for_backward(x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, out, *res[10:])
        ctx.train, ctx.ops, ctx.min_count = train, ops, min_count
        ctx.mark_non_differentiable(*res[3:10])
        return tuple(res[:10])

    @staticmethod
    def backward(ctx, gout, ghn, gcn, *_):
        x, mask, w_ih, w_hh, bias, gx, gh, gc, bc, h0, c0, out, *saved = ctx.saved_tensors
        gout = torch.zeros_like(out) if gout is None else gout.contiguous()
        ghn = torch.zeros_like(h0) if ghn is None else ghn.contiguous()
        gcn = torch.zeros_like(c0) if gcn is None else gcn.contiguous()
        grads = ctx.ops.bn_backward(gout, ghn, gcn, x, mask, w_ih, w_hh, bias, gx, gh, gc, bc,
                                    h0, c0, out, saved, ctx.train, ctx.min_count)
        dx, dw_ih, dw_hh, db, dgx, dgh, dgc, dbc, dh0, dc0 = grads
        return (dx, dw_ih, dw_hh, db, dgx, dgh, dgc, dbc, dh0, dc0, None, None, None, None, None,
                None)


def bn_layer(x: Tensor, mask: Tensor, layer, h0: Tensor, c0: Tensor, train: bool, ops):
    """One BNLSTM layer (``weight_ih``, ``weight_hh``, ``bias``, ``bn_x``, ``bn_h``, ``bn_c``)
    over x [T, B, F] with mask [T, B] (bool, or empty: all valid): (out [T,B,H], h_n, c_n,
    moments). ``moments`` is (mean_x, var_x, mean_h, var_h, mean_c, var_c, counts) in train
    (for :meth:`SeqBatchNorm.update_running`), None in eval. Through :class:`FusedBNLSTM` when
    a gradient is needed; otherwise the forward kernel alone, saving nothing."""
    bias = layer.bias
    for bn in (layer.bn_x, layer.bn_h):  # shifts of BN_x, BN_h (if any) add to the gates' bias
        if bn.bias is not None:
            bias = bias + bn.bias
    params = [layer.weight_ih, layer.weight_hh, bias, layer.bn_x.weight,
              layer.bn_h.weight, layer.bn_c.weight, layer.bn_c.bias]
    args = [v.contiguous() for v in (x, *params, h0, c0)]
    running = [] if train else [
        b.contiguous() for bn in (layer.bn_x, layer.bn_h, layer.bn_c)
        for b in (bn.running_mean, bn.running_var)]
    eps = (float(layer.bn_x.eps), float(layer.bn_h.eps), float(layer.bn_c.eps))
    mask = mask.contiguous()
    least = min_stat_count(x.shape[1] if not mask.numel() else int(mask[0].sum())
                           if len(mask) else 0)
    if torch.is_grad_enabled() and any(v.requires_grad for v in args):
        res = FusedBNLSTM.apply(*args, mask, running, eps, train, ops, least)
    else:
        res = ops.bn_forward(args[0], mask, *args[1:], running, *eps, train, False, least)
    out, h_n, c_n = res[0], res[1], res[2]
    return out, h_n, c_n, (tuple(res[3:10]) if train else None)
