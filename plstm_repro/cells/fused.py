r"""Fused Phased LSTM recurrence for training: one layer over a sequence, hand-written BPTT.

Each step computes the pre-activations ``[h_{n-1}, x_n] [W_hh; W_ih]^T + b`` (with
``b = b_ih + b_hh``) and one elementwise pass that computes the time gate (eq. 6, phase in
float64) and eq. 7-10:

.. math::
    \tilde c = f c_{n-1} + i g, \quad c_n = c_{n-1} + k (\tilde c - c_{n-1}), \quad
    h_n = h_{n-1} + k (o \tanh \tilde c - h_{n-1})

The backward is BPTT over what the forward saved (activations, c, k and which branch of eq. 6
each k took; c~ = f c_{n-1} + i g and tanh c~ are recomputed), with

.. math::
    \partial k / \partial \phi \in \{2/r_{on}, -2/r_{on}, \alpha\}, \quad
    \partial \phi / \partial \tau = -(t - s)/\tau^2, \quad \partial \phi / \partial s = -1/\tau

(the derivatives the reference path gets from autograd through ``torch.remainder``).

Three implementations of the same two functions ``fused_forward`` / ``fused_backward``: the C++
kernels on the CPU (:mod:`._ext`), :class:`.compiled.CompiledOps` (one GEMM and one compiled
pointwise kernel per step; CUDA's default, backend="compiled" anywhere), and :class:`TorchOps` in
plain PyTorch ops (a fallback that tests exercise).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._ext import load_extension
from .functional import weight_grads


class TorchOps:
    """The fused algorithm in PyTorch ops, with the C++ kernels' signatures (used on CUDA)."""

    @staticmethod
    def gates(t, mask, tau, shift, r, leak, dtype):
        """k [T, B, H] in ``dtype``, and the branch of eq. 6 taken (0 padded, 1 rising,
        2 falling, 3 closed)."""
        d = t.unsqueeze(-1) - shift
        phi = torch.remainder(d, tau) / tau
        up = 2.0 * phi / r
        rising, falling = phi < 0.5 * r, phi < r
        k = torch.where(rising, up, torch.where(falling, 2.0 - up, leak * phi))
        code = torch.where(rising, 1, torch.where(falling, 2, 3)).to(torch.int8)
        if mask.numel():  # where, not a product: NaN timestamps may sit in the padding
            keep = mask.unsqueeze(-1)
            k = torch.where(keep, k, 0.0)
            code = torch.where(keep, code, 0)
        return k.to(dtype), code

    @staticmethod
    def fused_forward(x, t, mask, w_ih, bias, w_hh, tau, shift, r, h0, c0, leak, save):
        T, B, F = x.shape
        H = w_hh.shape[1]
        k, code = TorchOps.gates(t, mask, tau, shift, r, leak, x.dtype)
        # The input projection of all steps in one product (on the GPU memory is not the limit).
        flat = x.reshape(T * B, F)
        xw = (torch.addmm(bias, flat, w_ih.t()) if bias.numel() else flat @ w_ih.t())
        xw = xw.view(T, B, 4 * H)
        out = x.new_empty(T, B, H)
        if save:
            call, acts = x.new_empty(T, B, H), x.new_empty(T, B, 4 * H)
        h, c, wt = h0, c0, w_hh.t()
        for n in range(T):
            a = torch.addmm(xw[n], h, wt)
            ai, af, ag, ao = a.chunk(4, 1)
            i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
            ct = f * c + i * g
            h = torch.lerp(h, o * torch.tanh(ct), k[n])
            c = torch.lerp(c, ct, k[n])
            out[n] = h
            if save:
                torch.cat([i, f, g, o], 1, out=acts[n])
                call[n] = c
        if not save:
            return [out, c.clone()]
        return [out, c.clone(), call, acts, k, code]

    @staticmethod
    def fused_backward(gout, ghn, gcn, out, call, acts, kall, code, x, t, w_ih, w_hh, tau,
                       shift, r, h0, c0, leak, need_r):
        T, B, H = out.shape
        da = out.new_empty(T, B, 4 * H)
        dk = out.new_empty(T, B, H)
        dh, dc = ghn.clone(), gcn.clone()
        for n in range(T - 1, -1, -1):
            hp = out[n - 1] if n else h0
            cp = call[n - 1] if n else c0
            i, f, g, o = acts[n].chunk(4, 1)
            k = kall[n]
            ct = f * cp + i * g  # c~ and tanh c~, recomputed rather than saved
            tc = torch.tanh(ct)
            dhv = dh + gout[n]
            dht = k * dhv
            dct = k * dc + dht * o * (1 - tc * tc)
            dk[n] = dhv * (o * tc - hp) + dc * (ct - cp)
            torch.cat([dct * g * i * (1 - i), dct * cp * f * (1 - f), dct * i * (1 - g * g),
                       dht * tc * o * (1 - o)], 1, out=da[n])
            dc = dc * (1 - k) + dct * f
            dh = torch.addmm(dhv * (1 - k), da[n], w_hh)
        dx, dw_ih, db, dw_hh = weight_grads(da, x, w_ih, h0, out)
        dk64 = dk.to(torch.float64)
        c1, c2, c3 = code == 1, code == 2, code == 3
        slope = torch.where(c1, 2.0 / r, torch.where(c2, -2.0 / r, torch.where(c3, leak, 0.0)))
        dphi = dk64 * slope
        d = t.unsqueeze(-1) - shift
        dtau = -(dphi * d).sum((0, 1)) / (tau * tau)
        dshift = -dphi.sum((0, 1)) / tau
        dr = torch.zeros_like(tau)
        if need_r:
            kk = kall.to(torch.float64)
            dkdr = torch.where(c1, -kk, torch.where(c2, 2.0 - kk, 0.0)) / r
            dr = (dk64 * dkdr).sum((0, 1))
        return [dx, dw_ih, db, dw_hh, dtau, dshift, dr, dh, dc]


def kernels(device: torch.device):
    """The C++ kernels for CPU tensors (None when they cannot be built); elsewhere the compiled
    recurrence of :mod:`.compiled` (GEMM + one fused pointwise kernel per step) where
    torch.compile can build it, else TorchOps."""
    if device.type == "cpu":
        return load_extension()
    from .compiled import gpu_ops

    return gpu_ops(device, TorchOps)


class FusedPLSTM(torch.autograd.Function):
    """(x [T,B,F], w_ih, bias [4H] (b_ih + b_hh) or empty, w_hh, tau64, shift64, r64, h0, c0,
    t64 [T,B], mask [T,B] bool or empty, leak, ops) -> (out [T,B,H], h_n, c_n).
    tau64/shift64/r64 are float64, already clamped."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, w_hh, tau, shift, r, h0, c0, t, mask, leak, ops):
        save = any(ctx.needs_input_grad[:9])
        res = ops.fused_forward(x, t, mask, w_ih, bias, w_hh, tau, shift, r, h0, c0,
                                float(leak), save)
        out, cn = res[0], res[1]
        if save:
            ctx.save_for_backward(out, *res[2:], x, t, w_ih, w_hh, tau, shift, r, h0, c0)
            ctx.leak, ctx.ops, ctx.has_bias = float(leak), ops, bias.numel() > 0
        return out, out[-1].clone(), cn

    @staticmethod
    def backward(ctx, gout, ghn, gcn):
        out, call, acts, kall, code, x, t, w_ih, w_hh, tau, shift, r, h0, c0 = ctx.saved_tensors
        gout = torch.zeros_like(out) if gout is None else gout.contiguous()
        ghn = torch.zeros_like(h0) if ghn is None else ghn.contiguous()
        gcn = torch.zeros_like(c0) if gcn is None else gcn.contiguous()
        dx, dw_ih, db, dw_hh, dtau, dshift, dr, dh0, dc0 = ctx.ops.fused_backward(
            gout, ghn, gcn, out, call, acts, kall, code, x, t, w_ih, w_hh, tau, shift, r, h0,
            c0, ctx.leak, ctx.needs_input_grad[6])
        return (dx, dw_ih, db if ctx.has_bias else None, dw_hh, dtau, dshift, dr, dh0, dc0,
                None, None, None, None)


def fused_layer(x: Tensor, t64: Tensor, mask: Tensor, w_ih: Tensor, bias: Tensor | None,
                w_hh: Tensor, tau64: Tensor, shift64: Tensor, r64: Tensor, h0: Tensor,
                c0: Tensor, leak: float, ops):
    """One layer over the sequence x [T, B, F]: (out [T,B,H], h_n, c_n). ``bias`` is
    b_ih + b_hh (None: no biases). Through :class:`FusedPLSTM` when a gradient is needed;
    otherwise the forward kernel alone, saving nothing (inside ``Function.forward``
    ``needs_input_grad`` is also true under ``no_grad``)."""
    if bias is None:
        bias = x.new_empty(0)
    args = [v.contiguous() for v in (x, w_ih, bias, w_hh, tau64, shift64, r64, h0, c0, t64, mask)]
    if torch.is_grad_enabled() and any(v.requires_grad for v in args[:9]):
        return FusedPLSTM.apply(*args, leak, ops)
    x, w_ih, bias, w_hh, tau64, shift64, r64, h0, c0, t64, mask = args
    out, c_n = ops.fused_forward(x, t64, mask, w_ih, bias, w_hh, tau64, shift64, r64, h0, c0,
                                 float(leak), False)
    return out, out[-1], c_n
