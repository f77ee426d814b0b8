r"""The recurrent BN-LSTM baseline (the time an extra input, as :mod:`.baselines`): recurrent batch
normalisation, Cooijmans et al. 2016, eq. 6-8:

.. math::
    (i, f, g, o) = \mathrm{BN}(h_{t-1} W_h; \gamma_h) + \mathrm{BN}(x_t W_x; \gamma_x) + b

    c_t = \sigma(f) c_{t-1} + \sigma(i) \tanh(g), \qquad
    h_t = \sigma(o) \tanh(\mathrm{BN}(c_t; \gamma_c, \beta_c))

with statistics kept per time step, batch statistics in ``train()`` over the samples still valid
at that step, running statistics in ``eval()``; gamma starts at 0.1 as the authors recommend.
As in Cooijmans et al. (sec. 4), the running statistics have a slot for every step up to the
longest training sequence (the slots grow with the sequences seen in training, up to
``max_stat_steps``), and longer test sequences use the last slot's. A fixed 1,000 slots let the
steps 1,000-5,000 of an N-MNIST recording (~5,000 events) share one pooled slot in ``eval()``
while every one of them had its own batch statistics in training: the eval network was not the
trained one (synthetic N-MNIST, same weights: 10-11% test accuracy with the pooled slot, 15%
with a slot per step, 20% with batch statistics).

A ragged batch's tail: a step whose valid samples are fewer than
:func:`.bn_fused.min_stat_count` of the batch's sequences normalises with the batch statistics
of the last step that had enough, as
constants (no gradient through them), and leaves the running statistics alone. Statistics over
2-3 samples are no estimate: every normalised value is then about +-1 whatever the inputs, and
when two samples nearly agree 1/sqrt(var + eps) (up to ~316) multiplies the recurrent gradient
at every step of the tail: 1e11 after a 570-step tail of 2 samples, a non-finite loss on
N-MNIST in random batches.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import bn_fused
from .baselines import append_time
from .checks import (
    check_backend,
    check_dtypes,
    check_sequence_inputs,
    check_state,
    choose_kernels,
    valid_mask,
)


def batch_min_count(mask: Tensor | None, batch: int) -> int:
    """:func:`.bn_fused.min_stat_count` of a batch: ``mask`` [T, B] (prefix per sample) or
    None (all)."""
    n = batch if mask is None else int(mask[0].sum()) if len(mask) else 0
    return bn_fused.min_stat_count(n)


INITIAL_SLOTS = 1000  # running-statistics slots allocated up front; more as sequences need them


def _stacked(pending: list) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The (step, mean, biased var, count) moments of ``pending``, each concatenated."""
    return tuple(torch.cat([p[k] for p in pending]) for k in range(4))


class SeqBatchNorm(nn.Module):
    """Batch norm over the batch with separate statistics per time step (Cooijmans et al.).

    The running statistics hold one slot per step seen in training (``slots``: at first
    min(max_steps, 1000), grown by :meth:`grow` up to ``max_steps``); steps past the last slot
    use it (pooled into it in training, read from it in eval)."""

    collected: list | None = None  # set by refresh_statistics: moments kept, not applied

    def __init__(self, features: int, max_steps: int, affine_bias: bool, gamma: float = 0.1,
                 momentum: float = 0.1, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.max_steps, self.momentum, self.eps = max_steps, momentum, eps
        self.weight = nn.Parameter(torch.full((features,), gamma, **fk))
        self.bias = nn.Parameter(torch.zeros(features, **fk)) if affine_bias else None
        slots = min(max_steps, INITIAL_SLOTS)
        self.register_buffer("running_mean", torch.zeros(slots, features, **fk))
        self.register_buffer("running_var", torch.ones(slots, features, **fk))

    @property
    def slots(self) -> int:
        return self.running_mean.shape[0]

    @torch.no_grad()
    def grow(self, steps: int) -> None:
        """Slots for ``steps`` steps (at most ``max_steps``); a new slot starts as a copy of the
        last one, which eval used for those steps so far."""
        want = min(int(steps), self.max_steps)
        if want <= self.slots:
            return
        extra = want - self.slots
        self.running_mean = torch.cat([self.running_mean,
                                       self.running_mean[-1:].expand(extra, -1)])
        self.running_var = torch.cat([self.running_var, self.running_var[-1:].expand(extra, -1)])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint's slots (grown in its training) replace the fresh module's
        for name in ("running_mean", "running_var"):
            saved = state_dict.get(prefix + name)
            mine = getattr(self, name)
            if torch.is_tensor(saved) and saved.dim() == 2 and saved.shape[0] != mine.shape[0]:
                setattr(self, name, mine.new_empty(saved.shape[0], mine.shape[1]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, v: Tensor, steps: Tensor, mask: Tensor | None,
                pending: list | None = None, min_count: int = 0,
                last: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Normalise ``v`` [S, B, D] at the time steps ``steps`` [S] (S = 1 inside a loop).

        ``mask`` [S, B] marks the samples whose statistics count (valid steps). In training the
        batch moments go to ``pending`` when given (applied later by ``update_running``, once per
        sequence instead of once per step), else straight into the running statistics. A step
        with fewer than ``min_count`` valid samples uses the detached (mean, var) of the last
        step that had enough: the last such step of ``v``, or ``last`` (S = 1); its moments go
        out with a count of 0 (the running statistics ignore them).
        """
        idx = steps.clamp_max(self.slots - 1)
        if self.training:
            if mask is None:
                var, mean = torch.var_mean(v, dim=1, unbiased=False, keepdim=True)
                n = v.new_full((v.shape[0],), float(v.shape[1]))
            else:
                w = mask.to(v.dtype).unsqueeze(-1)
                n = w.sum(1).squeeze(-1)
                denom = n.clamp_min(1.0)[:, None, None]
                mean = (v * w).sum(1, keepdim=True) / denom
                var = (((v - mean) * w) ** 2).sum(1, keepdim=True) / denom
                own = n >= min_count
                if not bool(own.all()):
                    mean, var = self._borrowed(mean, var, own, last)
                    n = torch.where(own, n, 0.0)
            moments = (idx, mean.detach().squeeze(1), var.detach().squeeze(1), n)
            if pending is None:
                self.update_running([moments])
            else:
                pending.append(moments)
        else:
            mean, var = self.running_mean[idx].unsqueeze(1), self.running_var[idx].unsqueeze(1)
        out = (v - mean) * torch.rsqrt(var + self.eps) * self.weight
        return out if self.bias is None else out + self.bias

    @staticmethod
    def _borrowed(mean: Tensor, var: Tensor, own: Tensor, last):
        """mean, var [S, 1, D] where the steps that are not ``own`` (a suffix: the mask is a
        prefix per sample) take the last own step's moments, detached."""
        k = int(own.sum())
        if k:
            src = mean[k - 1].detach(), var[k - 1].detach()
        elif last is not None:
            src = last
        else:  # no step with enough samples yet: its own moments, as before
            return mean, var
        keep = own[:, None, None]
        return torch.where(keep, mean, src[0]), torch.where(keep, var, src[1])

    @torch.no_grad()
    def update_running(self, pending: list) -> None:
        """Exponential moving averages of (step, mean, biased var, count) moments, in order (the
        variance kept biased);
        the steps sharing the last slot (past ``slots``) enter it once per call, pooled."""
        if not pending:
            return
        if self.collected is not None:  # refresh_statistics pools them at the end
            self.collected.extend(pending)
            return
        idx, mean, var, n = _stacked(pending)
        idx, mean, var, n = self._pool_last_slot(idx, mean, var, n.unsqueeze(-1))
        # the biased variance, the one training normalised with: the unbiased one (x B/(B-1))
        # shrinks every normalised value in eval by ~1.6% at B = 32, a change of the network
        # that compounds over thousands of recurrent steps (synthetic N-MNIST, same weights:
        # 14% test accuracy with it, 19% without, 18-20% with batch statistics)
        seen = n > 0  # a step where every sample was padding leaves the statistics alone
        m = self.momentum
        self.running_mean[idx] = torch.where(seen, torch.lerp(self.running_mean[idx], mean, m),
                                             self.running_mean[idx])
        self.running_var[idx] = torch.where(seen, torch.lerp(self.running_var[idx], var, m),
                                            self.running_var[idx])

    def _pool_last_slot(self, idx, mean, var, n):
        """The moments of every step in the last slot, pooled into one (count-weighted mean,
        within- plus between-step variance): indexed assignment would keep just one of them,
        the tail's last step, often over 1-2 samples."""
        tail = idx == self.slots - 1
        if int(tail.sum()) < 2:
            return idx, mean, var, n
        w = n[tail]
        total = w.sum()
        if total <= 0:
            return idx[~tail], mean[~tail], var[~tail], n[~tail]
        pm = (w * mean[tail]).sum(0, keepdim=True) / total
        pv = (w * (var[tail] + (mean[tail] - pm) ** 2)).sum(0, keepdim=True) / total
        keep = ~tail
        return (torch.cat([idx[keep], idx[tail][:1]]), torch.cat([mean[keep], pm]),
                torch.cat([var[keep], pv]), torch.cat([n[keep], total.view(1, 1)]))

    @torch.no_grad()
    def set_population(self, pending: list) -> None:
        """Each slot's statistics replaced by the moments of ``pending`` at that slot, every
        valid sample alike: the count-weighted mean of the batch means and of the batch
        (biased, within-batch) variances, the ones training normalised with. Slots that no
        batch reached with enough samples keep their value."""
        if not pending:
            return
        idx, mean, var, n = _stacked(pending)
        n = n.double()
        S, D = self.running_mean.shape
        total = torch.zeros(S, dtype=torch.float64, device=n.device).index_add_(0, idx, n)
        seen = total > 0
        for target, moment in ((self.running_mean, mean), (self.running_var, var)):
            acc = torch.zeros(S, D, dtype=torch.float64, device=n.device)
            acc.index_add_(0, idx, moment.double() * n[:, None])
            target[seen] = (acc[seen] / total[seen, None]).to(target.dtype)


REFRESH_BATCHES = 20  # training batches whose moments become the population statistics


@torch.no_grad()
def refresh_statistics(model: nn.Module, inputs) -> bool:
    """Population statistics of the model's current weights: the running statistics of every
    :class:`SeqBatchNorm` in ``model`` replaced, slot by slot, by the moments of ``inputs``
    (an iterable of forward-argument tuples, e.g. an epoch's last training batches) at that
    step, every valid sample alike (:meth:`SeqBatchNorm.set_population`). Returns whether
    the model has any.

    Why: the moving average (momentum 0.1, one update per batch) mixes the moments of the last
    ~10 weight updates, and the recurrence compounds the mismatch over thousands of steps
    (synthetic N-MNIST after 3 quick epochs, same weights: eval 12% with the moving averages,
    19% with the moments of 45 training batches at the final weights; batch statistics 18-20%).
    Pooled per slot, not as a running mean over the batches: a step that only some batches
    reach (the long recordings' tails) would otherwise keep most of its old moving average.
    """
    bns = [m for m in model.modules() if isinstance(m, SeqBatchNorm)]
    if not bns:
        return False
    was_training = model.training
    for bn in bns:
        bn.collected = []
    model.train()
    try:
        for args in inputs:
            model(*args)
        for bn in bns:
            bn.set_population(bn.collected)
    finally:
        for bn in bns:
            bn.collected = None
        model.train(was_training)
    return True


class BNLSTM(nn.Module):
    """Recurrent batch-normalised LSTM (Cooijmans et al. 2016), time as an extra input.

    ``forward(x, t, state=None, lengths=None) -> (out, (h_n, c_n))``, as PhasedLSTM. Steps past
    ``lengths[b]`` keep the state and output 0.

    ``backend``: "reference" is the plain PyTorch loop below; "fused" the fused recurrence of
    :mod:`.bn_fused` (C++ kernels on the CPU, the compiled recurrence of :mod:`.compiled` on
    CUDA); "compiled" that one on any device; "auto" (default) is "fused" where it is available, else "reference". It can be
    changed after construction and is not part of the state_dict.
    """

    BACKENDS = ("auto", "reference", "fused", "compiled")
    _backend = "auto"  # class default: modules pickled before the attribute existed still run

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = True, time_scale: float = 1.0, max_stat_steps: int = 20000,
                 device=None, dtype=None, backend: str = "auto"):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.time_scale = batch_first, time_scale
        fk = {"device": device, "dtype": dtype}
        H = hidden_size
        self.layers = nn.ModuleList()
        for k in range(num_layers):
            fin = input_size + 1 if k == 0 else H
            layer = nn.Module()
            layer.weight_ih = nn.Parameter(torch.empty(4 * H, fin, **fk))
            layer.weight_hh = nn.Parameter(torch.empty(4 * H, H, **fk))
            layer.bias = nn.Parameter(torch.zeros(4 * H, **fk))
            layer.bn_x = SeqBatchNorm(4 * H, max_stat_steps, affine_bias=False, **fk)
            layer.bn_h = SeqBatchNorm(4 * H, max_stat_steps, affine_bias=False, **fk)
            layer.bn_c = SeqBatchNorm(H, max_stat_steps, affine_bias=True, **fk)
            self.layers.append(layer)
        self.backend = backend
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for layer in self.layers:
            layer.weight_ih.uniform_(-bound, bound)
            nn.init.orthogonal_(layer.weight_hh)
            layer.bias.zero_()
            layer.bias[self.hidden_size:2 * self.hidden_size].fill_(1.0)  # forget-gate bias 1

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_backend(value, self.BACKENDS)

    def fused_kernels(self, x: Tensor):
        """The fused kernels this forward would use for ``x``, or None for the reference loop
        (:func:`.checks.choose_kernels`)."""
        return choose_kernels(self._backend, x, bn_fused.kernels)

    def forward(self, x: Tensor, t: Tensor, state=None, lengths: Tensor | None = None):
        x, t, lengths = check_sequence_inputs(x, t, lengths, self.input_size, self.batch_first)
        B, T, _ = x.shape
        state = check_state(state, self.num_layers, B, self.hidden_size, 2)
        check_dtypes(x, state, self.layers[0].weight_hh.dtype)
        mask = None if lengths is None else valid_mask(lengths, T).t()  # [T, B]
        inp = append_time(x, t.to(x.device), self.time_scale).transpose(0, 1)  # [T, B, F]
        if mask is not None:  # padding (a NaN timestamp there too) must not reach the statistics
            inp = torch.where(mask.unsqueeze(-1), inp, 0.0)
        if self.training:  # a slot for every step (Cooijmans et al.), up to max_stat_steps
            for layer in self.layers:
                for bn in (layer.bn_x, layer.bn_h, layer.bn_c):
                    bn.grow(T)
        ops = self.fused_kernels(x)
        if ops is None:
            out, hs, cs = self._reference(inp, state, lengths, mask)
        else:
            out, hs, cs = self._fused(inp, state, mask, ops)
        out = out.transpose(0, 1) if self.batch_first else out
        return out, (torch.stack(hs), torch.stack(cs))

    def _fused(self, inp: Tensor, state, mask: Tensor | None, ops):
        """The layers through :func:`bn_fused.bn_layer`; in train the batch moments it returns
        update the running statistics as the reference loop's do (one call per module)."""
        T, B, _ = inp.shape
        mask_t = mask if mask is not None else torch.empty(0, dtype=torch.bool,
                                                           device=inp.device)
        steps = torch.arange(T, device=inp.device)
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            h0 = inp.new_zeros(B, self.hidden_size) if state is None else state[0][k]
            c0 = inp.new_zeros(B, self.hidden_size) if state is None else state[1][k]
            inp, h, c, moments = bn_fused.bn_layer(inp, mask_t, layer, h0, c0, self.training,
                                                   ops)
            if moments is not None:
                mx, vx, mh, vh, mc, vc, n = moments
                for bn, mean, var in ((layer.bn_x, mx, vx), (layer.bn_h, mh, vh),
                                      (layer.bn_c, mc, vc)):
                    bn.update_running([(steps.clamp_max(bn.slots - 1), mean, var, n)])
            hs.append(h)
            cs.append(c)
        return inp, hs, cs  # the kernels output 0 at padded steps

    def _reference(self, inp: Tensor, state, lengths: Tensor | None, mask: Tensor | None):
        """The plain PyTorch loop (backend="reference"): [T, B, H] output, h_n and c_n lists."""
        T, B, _ = inp.shape
        steps = torch.arange(T, device=inp.device)
        hs, cs = [], []
        least = batch_min_count(mask, B)
        for k, layer in enumerate(self.layers):
            xw = layer.bn_x(inp @ layer.weight_ih.t(), steps, mask, min_count=least) + layer.bias
            h = inp.new_zeros(B, self.hidden_size) if state is None else state[0][k]
            c = inp.new_zeros(B, self.hidden_size) if state is None else state[1][k]
            outs, pend_h, pend_c = [], [], []
            last_h = last_c = None  # the last moments of bn_h, bn_c with enough samples
            # samples still valid at step n: the batch is full until the shortest one ends
            full_until = T if mask is None else int(lengths.min())
            for n, xw_n in enumerate(xw.unbind(0)):
                m_n = None if n < full_until else mask[n:n + 1]
                s_n = steps[n:n + 1]
                gates = xw_n + layer.bn_h((h @ layer.weight_hh.t()).unsqueeze(0), s_n, m_n,
                                          pend_h, least, last_h)[0]
                gi, gf, gg, go = gates.chunk(4, -1)
                c_new = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
                h_new = torch.sigmoid(go) * torch.tanh(
                    layer.bn_c(c_new.unsqueeze(0), s_n, m_n, pend_c, least, last_c)[0])
                if self.training and float(pend_h[-1][3][0]) > 0:
                    last_h = pend_h[-1][1][:, None], pend_h[-1][2][:, None]
                    last_c = pend_c[-1][1][:, None], pend_c[-1][2][:, None]
                if m_n is not None:
                    keep = m_n[0].unsqueeze(-1)
                    c_new, h_new = torch.where(keep, c_new, c), torch.where(keep, h_new, h)
                h, c = h_new, c_new
                outs.append(h)
            layer.bn_h.update_running(pend_h)
            layer.bn_c.update_running(pend_c)
            inp = torch.stack(outs)
            hs.append(h)
            cs.append(c)
        if mask is not None:
            inp = torch.where(mask.unsqueeze(-1), inp, 0.0)
        return inp, hs, cs
