r"""Sparse, event-driven inference of a PhasedLSTM (section 2 of the paper, "Sparse updates").

At test time the leak is 0, so a neuron whose gate is closed (k = 0, eq. 6) keeps its state
exactly (eq. 11): :math:`c_j = c_{j-1}`, :math:`h_j = h_{j-1}`. Only the open neurons need any
arithmetic: for an open neuron j its four gate rows :math:`W_{ih}[q H + j]`, :math:`W_{hh}[q H + j]`
(q = i, f, g, o) are multiplied by :math:`x_j` and :math:`h_{j-1}`, then eq. 7-10 update it.
With r_on = 0.05 that is about 5% of the neurons per step (Table 1: 159 vs 3153 updates).

The loop is in C++ (gathering rows with PyTorch ops costs more than the dense step); a batch's
samples are split over torch's threads. Without the compiled kernels, or on CUDA, the dense eval
forward is used: same outputs, no speed-up.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F
from ._ext import load_extension
from .checks import valid_mask


def _check_model(model) -> None:
    if not hasattr(model, "peephole") or getattr(model, "_gates", None) != 4:
        raise ValueError(f"model: expected a PhasedLSTM, got {type(model).__name__}")
    if model.peephole:
        raise ValueError("model: sparse inference does not support peepholes")
    if model.current_leak() != 0.0:
        raise ValueError(
            "model: sparse inference needs leak 0 (call model.eval(); in train() alpha = "
            f"{model.leak} updates every neuron at every step)"
        )


def count_updates(model, t: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Updates per neuron [num_layers, H]: steps with k > 0 at leak 0 over the valid steps,
    averaged over the samples of ``t`` [B, T] (batch-first). The mean over neurons is the last
    row of Table 1. Depends on the timestamps only, not on the inputs."""
    if t.dim() != 2:
        raise ValueError(f"t: expected timestamps [B, T], got {tuple(t.shape)}")
    mask = None
    if lengths is not None:
        mask = valid_mask(torch.as_tensor(lengths).to(t.device), t.shape[1])
    out = []
    with torch.no_grad():
        for k in range(model.num_layers):
            p = model.layer_params(k)
            phi = F.phase(t, p["tau"], p["shift"])
            is_open = F.gate_from_phase(phi, p["r_on"], 0.0) > 0
            if mask is not None:
                is_open = is_open & mask.unsqueeze(-1)
            out.append(is_open.sum((0, 1)).to(torch.float64) / t.shape[0])
    return torch.stack(out)


def sparse_forward(model, x: Tensor, t: Tensor, state=None, lengths: Tensor | None = None):
    """Event-driven eval forward of ``model`` (a PhasedLSTM in eval()).

    Same arguments and outputs as ``model(x, t, state, lengths)``, plus ``updates_per_neuron``
    [num_layers, H] (see :func:`count_updates`). Outputs equal the dense eval forward up to
    float rounding (the dot products are summed in another order). Runs without autograd.
    """
    _check_model(model)
    ext = load_extension() if torch.is_tensor(x) and x.device.type == "cpu" else None
    if ext is None or x.dtype not in (torch.float32, torch.float64):
        with torch.no_grad():
            out, st = model(x, t, state, lengths)
        tb = t if model.batch_first else t.transpose(0, 1)
        return out, st, count_updates(model, tb, lengths)
    with torch.no_grad():
        inp, t64, mask, mask_t, h0, c0 = model.kernel_inputs(x, t, state, lengths)
        hs, cs, counts = [], [], []
        for k in range(model.num_layers):
            p = model.layer_params(k)
            bias, tau, shift, r_on = model.kernel_params(k, ext)
            inp, h_n, c_n, cnt = ext.sparse_forward(
                inp, t64, mask_t, p["weight_ih"].contiguous(), p["weight_hh"].contiguous(),
                inp.new_empty(0) if bias is None else bias, tau, shift, r_on,
                h0[k].contiguous(), c0[k].contiguous())
            hs.append(h_n)
            cs.append(c_n)
            counts.append(cnt)
        out = model._output(inp.transpose(0, 1), mask)
        return out, (torch.stack(hs), torch.stack(cs)), torch.stack(counts)
