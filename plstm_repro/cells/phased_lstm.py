"""PhasedLSTM and PhasedGRU modules: parameters, initialisation and the loop over time.

The equations live in :mod:`plstm_repro.cells.functional`. Parameters are named and shaped as in
``torch.nn.LSTM`` / ``torch.nn.GRU`` (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``), so their weights load with ``load_state_dict(lstm.state_dict(), strict=False)``;
each layer adds ``tau_l{k}``, ``shift_l{k}`` (in the units of ``t``) and ``r_on_l{k}``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from . import functional as F
from . import fused
from .checks import (
    check_backend,
    check_dtypes,
    check_sequence_inputs,
    check_state,
    choose_kernels,
    valid_mask,
    zero_padding,
)
from .sparse import sparse_forward

TAU_DISTS = ("log_uniform", "uniform")


def _check_arguments(input_size, hidden_size, num_layers, r_on, leak, tau_init, tau_dist,
                     shift_max) -> None:
    """ValueError naming the first constructor argument out of its range."""
    if input_size < 1 or hidden_size < 1 or num_layers < 1:
        raise ValueError(
            "input_size, hidden_size, num_layers: expected positive integers, got "
            f"{input_size}, {hidden_size}, {num_layers}"
        )
    if not 0.0 < r_on <= 1.0:
        raise ValueError(f"r_on: expected a ratio in (0, 1], got {r_on}")
    if leak < 0:
        raise ValueError(f"leak: expected alpha >= 0, got {leak}")
    lo, hi = tau_init
    if tau_dist not in TAU_DISTS:
        raise ValueError(f"tau_dist: expected one of {TAU_DISTS}, got {tau_dist!r}")
    if not lo <= hi or (tau_dist == "uniform" and lo <= 0):
        form = "exp(U(a, b))" if tau_dist == "log_uniform" else "U(a, b), 0 < a"
        raise ValueError(f"tau_init: expected (a, b) with a <= b (tau ~ {form}), got "
                         f"{tau_init}")
    if not shift_max >= 0:
        raise ValueError(f"shift_max: expected >= 0 (shift ~ U(0, shift_max); 0: U(0, tau)), "
                         f"got {shift_max}")


class _PhasedRNNBase(nn.Module):
    """Shared by PhasedLSTM and PhasedGRU; subclasses set ``_gates`` and ``_n_state``."""

    _gates = 4
    _n_state = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        r_on: float = 0.05,
        leak: float = 1e-3,
        tau_init: tuple[float, float] = (0.0, 3.0),
        learn_r_on: bool = False,
        learn_time: bool = True,
        device=None,
        dtype=None,
        tau_dist: str = "log_uniform",
        shift_max: float = 0.0,
    ):
        super().__init__()
        _check_arguments(input_size, hidden_size, num_layers, r_on, leak, tau_init, tau_dist,
                         shift_max)
        lo, hi = tau_init
        self.tau_dist, self.shift_max = tau_dist, float(shift_max)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.r_on_init, self.leak, self.tau_init = r_on, leak, (float(lo), float(hi))
        self.learn_r_on, self.learn_time = learn_r_on, learn_time
        self._warned_coarse_t = False  # one warning per model for too coarse timestamps
        self._time_check = (None, 0.0)  # (versions of tau, shift, r_on, shortest open phase)
        fk = {"device": device, "dtype": dtype}
        G, H = self._gates * hidden_size, hidden_size
        for k in range(num_layers):
            fin = input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(G, fin, **fk)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(G, H, **fk)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(G, **fk)))
                self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(G, **fk)))
            for name, learn in (("tau", learn_time), ("shift", learn_time), ("r_on", learn_r_on)):
                value = torch.empty(H, **fk)
                if learn:
                    self.register_parameter(f"{name}_l{k}", nn.Parameter(value))
                else:
                    self.register_buffer(f"{name}_l{k}", value)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights ~ U(-1/sqrt(H), 1/sqrt(H)) as nn.LSTM; tau ~ exp(U(a, b)) (``tau_dist``
        "log_uniform", the paper's sec. 3.1-3.3) or U(a, b) ("uniform", sec. 3.4's merged
        layers); s ~ U(0, tau), or U(0, shift_max) when set (the authors' U(0, 100))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        lo, hi = self.tau_init
        for name, p in self.named_parameters():
            if name.startswith(("weight", "bias")):
                p.uniform_(-bound, bound)
        for k in range(self.num_layers):
            tau = getattr(self, f"tau_l{k}")
            draw = torch.empty_like(tau).uniform_(lo, hi)
            tau.copy_(torch.exp(draw) if self.tau_dist == "log_uniform" else draw)
            top = self.shift_max if self.shift_max > 0 else tau
            getattr(self, f"shift_l{k}").copy_(torch.rand_like(tau) * top)
            getattr(self, f"r_on_l{k}").fill_(self.r_on_init)

    _LAYER_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "tau", "shift", "r_on")

    def layer_params(self, k: int) -> dict[str, Tensor | None]:
        """Layer k's tensors by short name (bias_* are None without bias)."""
        # The dicts first: nn.Module.__getattr__ costs ~1 us a name, on every streaming step.
        # getattr for the rest: absent biases, and names that parametrizations or weight_norm
        # moved out of _parameters (they are properties or plain attributes then).
        params, buffers = self._parameters, self._buffers
        out = {}
        for n in self._LAYER_NAMES:
            key = f"{n}_l{k}"
            v = params.get(key)
            if v is None:
                v = buffers.get(key)
            out[n] = getattr(self, key, None) if v is None else v
        return out

    def current_leak(self) -> float:
        """alpha: the leak in train(), 0 in eval() (eq. 6; the paper turns it off at test)."""
        return self.leak if self.training else 0.0

    def time_gates(self, t: Tensor, k: int, mask: Tensor | None = None) -> Tensor:
        """k_t [B, T, H] of layer k for timestamps t [B, T]; 0 at padded steps (state kept)."""
        p = self.layer_params(k)
        gate = F.time_gate(t, p["tau"], p["shift"], p["r_on"], self.current_leak())
        # where, not a product: a NaN timestamp in the padding must not leak into the state
        return gate if mask is None else torch.where(mask.unsqueeze(-1), gate, 0.0)

    def _prepare(self, x, t, state, lengths):
        x, t, lengths = check_sequence_inputs(x, t, lengths, self.input_size, self.batch_first)
        B, T, _ = x.shape
        state = check_state(state, self.num_layers, B, self.hidden_size, self._n_state)
        check_dtypes(x, state, self.layer_params(0)["weight_hh"].dtype)
        self._check_time_params(t)
        mask = None if lengths is None else valid_mask(lengths, T)
        x, t = zero_padding(x, t.to(x.device), lengths)
        if state is None:
            z = x.new_zeros(self.num_layers, B, self.hidden_size)
            state = (z,) * self._n_state
        return x, t, lengths, mask, state

    def _check_time_params(self, t: Tensor) -> None:
        """tau, shift, r_on must be finite (a NaN period makes every output NaN, silently); and
        one warning when float32 timestamps are too coarse for the shortest open phase."""
        open_phase = self._shortest_open_phase()
        if t.is_floating_point() and t.dtype != torch.float64 and not self._warned_coarse_t:
            self._warn_coarse_timestamps(t, open_phase)

    def _shortest_open_phase(self) -> float:
        """min over neurons of r_on * tau, after checking that tau, shift, r_on are finite.
        Cached on the tensors' versions: a streaming step pays for it once, training (whose
        optimiser changes them in place) once per forward."""
        tensors = []
        for k in range(self.num_layers):
            p = self.layer_params(k)
            tensors += (p["tau"], p["shift"], p["r_on"])
        key = tuple((id(v), v._version) for v in tensors)
        if self._time_check[0] == key:
            return self._time_check[1]
        with torch.no_grad():
            for i, v in enumerate(tensors):
                if not bool(torch.isfinite(v).all()):
                    bad = (~torch.isfinite(v)).nonzero().flatten()[:5].tolist()
                    name = f"{('tau', 'shift', 'r_on')[i % 3]}_l{i // 3}"
                    raise ValueError(f"{name}: expected finite values, found "
                                     f"{v[bad].tolist()} at neurons {bad}")
            phase = min(float((F.positive_tau(tensors[i]).double()
                               * F.positive_r_on(tensors[i + 2]).double()).min())
                        for i in range(0, len(tensors), 3))
        self._time_check = (key, phase)
        return phase

    def _warn_coarse_timestamps(self, t: Tensor, open_phase: float) -> None:
        # float32 spacing is 128 at t = 1.6e9: the phase (computed in float64 from the rounded
        # t) is then off by up to half that spacing. Warn when it exceeds 1% of the open phase.
        finite = t[torch.isfinite(t)]
        if finite.numel() == 0:
            return
        top = finite.abs().max()
        spacing = float(torch.nextafter(top, top.new_tensor(float("inf"))) - top)
        if spacing > 0.01 * open_phase:
            self._warned_coarse_t = True
            warnings.warn(
                f"t: {t.dtype} timestamps reach {float(top):.4g}, where their spacing is "
                f"{spacing:.3g}, more than 1% of the shortest open phase r_on * tau = "
                f"{open_phase:.3g}: the time gates lose the phase. Pass t as torch.float64 "
                "(the phase is computed in float64), or subtract a per-sequence offset.",
                RuntimeWarning, stacklevel=4)

    def forward(self, x: Tensor, t: Tensor, state=None, lengths: Tensor | None = None):
        x, t, lengths, mask, state = self._prepare(x, t, state, lengths)
        finals = []
        inp = x
        for k in range(self.num_layers):
            p = self.layer_params(k)
            xw = inp @ p["weight_ih"].t()
            if p["bias_ih"] is not None:
                xw = xw + p["bias_ih"]
            gates = self.time_gates(t, k, mask)
            layer_state = tuple(s[k] for s in state)
            out, fin = self._recurrence(k, xw, gates, layer_state, p)
            finals.append(fin)
            inp = out
        stacked = tuple(torch.stack(s) for s in zip(*finals))
        return self._output(inp, mask), self._pack_state(stacked)

    def _output(self, out: Tensor, mask: Tensor | None) -> Tensor:
        """Batch-major ``out`` [B, T, H] -> the returned output: 0 at padded steps (where, not a
        product, so NaN timestamps in padding stay out), time-major unless batch_first."""
        if mask is not None:
            out = torch.where(mask.unsqueeze(-1), out, 0.0)
        return out if self.batch_first else out.transpose(0, 1)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"r_on={self.r_on_init}, leak={self.leak}, tau_init={self.tau_init}, "
            f"tau_dist={self.tau_dist}, "
            f"learn_time={self.learn_time}, learn_r_on={self.learn_r_on}"
        )


class PhasedLSTM(_PhasedRNNBase):
    """Phased LSTM (eq. 1-10) with timestamps per sample and per step.

    ``forward(x, t, state=None, lengths=None) -> (out, (h_n, c_n))`` with ``x`` [B, T, F],
    ``t`` [B, T] (float64 accepted and used for the phase), ``out`` [B, T, H] (0 at padded
    steps), ``h_n``/``c_n`` [num_layers, B, H] at each sample's last valid step. The same ``t``
    drives every layer. ``state`` continues a stream: processing it in chunks equals one call.
    The leak alpha applies in ``train()`` and is 0 in ``eval()``.

    ``backend``: "reference" is the plain PyTorch loop over :func:`functional.plstm_step`;
    "fused" the fused recurrence of :mod:`.fused` (C++ kernels on the CPU; on CUDA the
    compiled recurrence of :mod:`.compiled`, one GEMM and one fused pointwise kernel per step;
    no peepholes); "compiled" that compiled recurrence on any device (torch.compile; on the
    CPU for tests, slower than the C++ kernels); "auto" (default) is "fused" where it is
    available and supported, else "reference". It can be changed after construction.
    """

    _gates = 4
    _n_state = 2
    BACKENDS = ("auto", "reference", "fused", "compiled")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, r_on: float = 0.05, leak: float = 1e-3,
                 tau_init: tuple[float, float] = (0.0, 3.0), learn_r_on: bool = False,
                 learn_time: bool = True, peephole: bool = False, backend: str = "auto",
                 device=None, dtype=None, tau_dist: str = "log_uniform", shift_max: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, r_on, leak,
                         tau_init, learn_r_on, learn_time, device, dtype, tau_dist, shift_max)
        self.peephole = peephole
        self.backend = backend
        if peephole:
            bound = 1.0 / math.sqrt(hidden_size)
            for k in range(num_layers):
                for g in ("ci", "cf", "co"):
                    w = torch.empty(hidden_size, device=device, dtype=dtype).uniform_(-bound, bound)
                    self.register_parameter(f"weight_{g}_l{k}", nn.Parameter(w))

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        check_backend(value, self.BACKENDS)
        if value in ("fused", "compiled") and self.peephole:
            raise ValueError(
                f"backend: {value!r} does not support peepholes; use 'auto' or 'reference'")
        self._backend = value

    def fused_kernels(self, x: Tensor):
        """The fused kernels this forward would use for ``x``, or None for the reference loop
        (:func:`.checks.choose_kernels`; peepholes always take the loop)."""
        return None if self.peephole else choose_kernels(self._backend, x, fused.kernels)

    def kernel_inputs(self, x: Tensor, t: Tensor, state, lengths: Tensor | None):
        """Checked inputs in the kernels' time-major layout (each step's rows contiguous):
        (x [T, B, F], t64 [T, B], mask [B, T] or None, mask_t [T, B] or empty, h0, c0)."""
        x, t, lengths, mask, (h0, c0) = self._prepare(x, t, state, lengths)
        t64 = t.to(torch.float64).t().contiguous()
        mask_t = (mask.t().contiguous() if mask is not None
                  else torch.empty(0, dtype=torch.bool, device=x.device))
        return x.transpose(0, 1).contiguous(), t64, mask, mask_t, h0, c0

    def time_params64(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Layer k's tau, shift, r_on in float64, tau and r_on clamped as in the forward pass."""
        p = self.layer_params(k)
        return (F.positive_tau(p["tau"]).to(torch.float64).contiguous(),
                p["shift"].to(torch.float64).contiguous(),
                F.positive_r_on(p["r_on"]).to(torch.float64).contiguous())

    def kernel_bias(self, k: int) -> Tensor | None:
        """Layer k's b_ih + b_hh, the one bias the kernels add (None without biases)."""
        p = self.layer_params(k)
        return None if p["bias_ih"] is None else p["bias_ih"] + p["bias_hh"]

    def kernel_params(self, k: int, ops=None) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        """(kernel_bias(k), *time_params64(k)). Where no gradient is needed and ``ops`` (the
        C++ kernels) has ``kernel_params``, one call computes them with the same ATen ops: from
        Python they are eight ops, a good part of a streaming step's cost."""
        p = self.layer_params(k)
        grad = torch.is_grad_enabled() and any(v is not None and v.requires_grad
                                               for v in p.values())
        if grad or not hasattr(ops, "kernel_params"):
            return self.kernel_bias(k), *self.time_params64(k)
        return tuple(ops.kernel_params(p["tau"], p["shift"], p["r_on"], p["bias_ih"],
                                       p["bias_hh"], F.TAU_MIN, F.R_ON_MIN))

    def forward(self, x: Tensor, t: Tensor, state=None, lengths: Tensor | None = None):
        ops = self.fused_kernels(x) if torch.is_tensor(x) else None
        if ops is None:
            return super().forward(x, t, state, lengths)
        inp, t64, mask, mask_t, h0, c0 = self.kernel_inputs(x, t, state, lengths)
        leak, hs, cs = self.current_leak(), [], []
        for k in range(self.num_layers):
            p = self.layer_params(k)
            bias, tau, shift, r_on = self.kernel_params(k, ops)
            inp, h_n, c_n = fused.fused_layer(inp, t64, mask_t, p["weight_ih"], bias,
                                              p["weight_hh"], tau, shift, r_on, h0[k], c0[k],
                                              leak, ops)
            hs.append(h_n)
            cs.append(c_n)
        return self._output(inp.transpose(0, 1), mask), (torch.stack(hs), torch.stack(cs))

    def step(self, x_t: Tensor, t_t: Tensor, state=None):
        """One streaming step: ``x_t`` [B, F] at times ``t_t`` [B] -> (h [B, H], (h_n, c_n)).

        Feeding a stream event by event, passing the returned state back, equals one forward
        over the whole stream. In eval() (leak 0) it uses the sparse event-driven kernel: only
        neurons with an open gate are computed. ``h`` is the top layer's output.
        """
        if not torch.is_tensor(x_t) or x_t.dim() != 2:
            got = tuple(x_t.shape) if torch.is_tensor(x_t) else type(x_t).__name__
            raise ValueError(f"x_t: expected one step [B, F], got {got}")
        t_t = torch.as_tensor(t_t, device=x_t.device)
        if t_t.dim() == 0:
            t_t = t_t.expand(x_t.shape[0])
        if t_t.shape != x_t.shape[:1]:
            raise ValueError(f"t_t: expected timestamps [B] = ({x_t.shape[0]},), got "
                             f"{tuple(t_t.shape)}")
        x_seq, t_seq = x_t.unsqueeze(1), t_t.unsqueeze(1)
        if not self.batch_first:
            x_seq, t_seq = x_seq.transpose(0, 1), t_seq.transpose(0, 1)
        if self.current_leak() == 0.0 and not self.peephole:
            out, new_state, _ = sparse_forward(self, x_seq, t_seq, state)
        else:
            out, new_state = self(x_seq, t_seq, state)
        return (out[:, 0] if self.batch_first else out[0]), new_state

    def peepholes(self, k: int):
        if not self.peephole:
            return None
        return tuple(getattr(self, f"weight_{g}_l{k}") for g in ("ci", "cf", "co"))

    def _recurrence(self, k, xw, gates, state, p):
        h, c = state
        peep = self.peepholes(k)
        outs = []
        for xw_n, k_n in zip(xw.unbind(1), gates.unbind(1)):
            h, c = F.plstm_step(xw_n, k_n, h, c, p["weight_hh"], p["bias_hh"], peep)
            outs.append(h)
        return torch.stack(outs, 1), (h, c)

    @staticmethod
    def _pack_state(stacked):
        return stacked


class PhasedGRU(_PhasedRNNBase):
    """Phased GRU: the GRU's proposed state gated by the Phased LSTM time gate.

    Parameters as ``torch.nn.GRU`` (gate order r, z, n) plus ``tau_l{k}``, ``shift_l{k}``,
    ``r_on_l{k}``. ``forward(x, t, state=None, lengths=None) -> (out, h_n)`` with ``state`` the
    hidden state [num_layers, B, H], as ``nn.GRU``.
    """

    _gates = 3
    _n_state = 1

    def _recurrence(self, k, xw, gates, state, p):
        (h,) = state
        outs = []
        for xw_n, k_n in zip(xw.unbind(1), gates.unbind(1)):
            h = F.pgru_step(xw_n, k_n, h, p["weight_hh"], p["bias_hh"])
            outs.append(h)
        return torch.stack(outs, 1), (h,)

    @staticmethod
    def _pack_state(stacked):
        return stacked[0]
