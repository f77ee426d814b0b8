r"""Pure functions of the Phased LSTM (Neil, Pfeiffer, Liu, NIPS 2016, section 2).

Time gate, eq. 6, for a neuron with period :math:`\tau`, shift :math:`s`, open ratio :math:`r_{on}`:

.. math::
    \phi_t = \frac{(t - s) \bmod \tau}{\tau} \qquad \text{(floor-mod: } \phi \in [0, 1)
    \text{ also for } t < s)

    k_t = \begin{cases} 2\phi_t / r_{on} & \phi_t < r_{on}/2 \\
                        2 - 2\phi_t / r_{on} & r_{on}/2 \le \phi_t < r_{on} \\
                        \alpha \phi_t & \text{otherwise (leak; } \alpha = 0 \text{ at test)}
          \end{cases}

Phased LSTM update, eq. 7-10 (LSTM gates i, f, g, o as in eq. 1-5 / ``torch.nn.LSTM``):

.. math::
    \tilde c_j = f_j c_{j-1} + i_j \tanh(x_j W_{xc} + h_{j-1} W_{hc} + b_c)

    c_j = k_j \tilde c_j + (1 - k_j) c_{j-1}

    \tilde h_j = o_j \tanh(\tilde c_j)

    h_j = k_j \tilde h_j + (1 - k_j) h_{j-1}

Phased GRU (the extension proposed in the paper's discussion): the GRU's proposal
:math:`\tilde h_j = (1 - z_j) n_j + z_j h_{j-1}` is gated the same way,
:math:`h_j = k_j \tilde h_j + (1 - k_j) h_{j-1}`.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Floors that keep tau and r_on strictly positive in the forward pass (a zero period divides by 0).
TAU_MIN = 1e-6
R_ON_MIN = 1e-6


def positive_tau(tau: Tensor) -> Tensor:
    """tau as used in the forward pass: unchanged when >= TAU_MIN, else TAU_MIN."""
    return tau.clamp_min(TAU_MIN)


def positive_r_on(r_on: Tensor) -> Tensor:
    """r_on as used in the forward pass: clamped to [R_ON_MIN, 1]."""
    return r_on.clamp(R_ON_MIN, 1.0)


def phase(t: Tensor, tau: Tensor, shift: Tensor) -> Tensor:
    r"""phi = ((t - s) mod tau) / tau in float64, with floor-mod (``torch.remainder``).

    ``t`` ([...]) is broadcast against ``tau``/``shift`` ([H]) as ``t[..., None]``. Computed in
    float64 whatever the dtypes: float32 spacing is 128 at t = 1.6e9, which would destroy the phase.

    Gradient: ``torch.remainder(a, b) = a - b * floor(a / b)`` is differentiated with
    d floor / d(.) = 0, its derivative almost everywhere (floor is piecewise constant; at the wrap
    points the phase is discontinuous and has no derivative). This gives
    d phi / d tau = -(t - s) / tau^2 and d phi / d s = -1 / tau, the derivatives of the
    piecewise-linear phase that the authors' Theano code also back-propagates. Note that
    d phi / d tau grows with t: it is exact, and is why learned periods move fast late in a stream.
    """
    tau64 = positive_tau(tau).to(torch.float64)
    d = t.to(torch.float64).unsqueeze(-1) - shift.to(torch.float64)
    return torch.remainder(d, tau64) / tau64


def gate_from_phase(phi: Tensor, r_on: Tensor, leak: float) -> Tensor:
    """The piecewise-linear openness k of eq. 6, from the phase phi in [0, 1)."""
    r_on = positive_r_on(r_on).to(phi.dtype)
    up = 2.0 * phi / r_on
    return torch.where(phi < 0.5 * r_on, up, torch.where(phi < r_on, 2.0 - up, leak * phi))


def time_gate(
    t: Tensor, tau: Tensor, shift: Tensor, r_on: Tensor | float, leak: float = 0.0
) -> Tensor:
    """Openness k_t of eq. 6 for timestamps ``t`` [...] and per-neuron ``tau``, ``shift``,
    ``r_on`` [H]: returns [..., H] in the dtype of ``tau``.

    The phase is computed in float64 (see :func:`phase` for the derivative of the mod used);
    gradients reach ``tau``, ``shift`` and ``r_on``. ``leak`` is alpha (0.001 in training, 0 at
    test).
    """
    if not torch.is_tensor(r_on):
        r_on = torch.full_like(tau, float(r_on))
    k = gate_from_phase(phase(t, tau, shift), r_on, leak)
    return k.to(tau.dtype)


def lstm_gates(
    gates: Tensor, c: Tensor, peep: tuple[Tensor, Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """LSTM eq. 1-5 from pre-activations ``gates`` [B, 4H] (order i, f, g, o, as nn.LSTM).

    Returns (h~, c~): the proposed state before the time gate. With ``peep`` = (w_ci, w_cf, w_co),
    i and f see c_{j-1} and o sees c~_j (as in the authors' code).
    """
    gi, gf, gg, go = gates.chunk(4, dim=-1)
    if peep is not None:
        gi = gi + peep[0] * c
        gf = gf + peep[1] * c
    c_new = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
    if peep is not None:
        go = go + peep[2] * c_new
    h_new = torch.sigmoid(go) * torch.tanh(c_new)
    return h_new, c_new


def plstm_step(
    xw: Tensor,
    k: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    peep: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """One Phased LSTM step, eq. 7-10.

    ``xw`` [B, 4H] is the input projection x W_ih^T + b_ih (computed for all steps at once by the
    caller), ``k`` [B, H] the time gate at this step, (h, c) [B, H] the previous state.
    Returns the new (h, c).
    """
    gates = xw + h @ w_hh.t()
    if b_hh is not None:
        gates = gates + b_hh
    h_new, c_new = lstm_gates(gates, c, peep)
    return torch.lerp(h, h_new, k), torch.lerp(c, c_new, k)


def pgru_step(
    xw: Tensor, k: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> Tensor:
    """One Phased GRU step. ``xw`` [B, 3H] = x W_ih^T + b_ih (order r, z, n, as nn.GRU).

    r = sigmoid(xr + hr), z = sigmoid(xz + hz), n = tanh(xn + r * hn),
    h~ = (1 - z) n + z h, and the time gate: h_j = k h~ + (1 - k) h_{j-1}.
    """
    hw = h @ w_hh.t()
    if b_hh is not None:
        hw = hw + b_hh
    xr, xz, xn = xw.chunk(3, dim=-1)
    hr, hz, hn = hw.chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h_new = torch.lerp(n, h, z)
    return torch.lerp(h, h_new, k)


def masked_moments(v: Tensor, w: Tensor | None, den: Tensor, eps: float):
    """Mean, biased variance and 1/sqrt(var + eps) over dim -2 (the batch) of v [..., B, D],
    over the rows where w [..., B, 1] is true (all rows when w is None)."""
    vw = v if w is None else torch.where(w, v, 0.0)
    mean = vw.sum(-2) / den
    d = v - mean.unsqueeze(-2)
    d = d if w is None else torch.where(w, d, 0.0)
    var = (d * d).sum(-2) / den
    return mean, var, torch.rsqrt(var + eps)


def weight_grads(da: Tensor, x: Tensor, w_ih: Tensor, h0: Tensor, out: Tensor):
    """d x, d W_ih, d b, d W_hh from the pre-activation gradients ``da`` [T, B, 4H] of every
    step: four GEMMs over all steps at once, after the per-step BPTT loop."""
    T, B, F = x.shape
    H = h0.shape[-1]
    hprev = torch.cat([h0.unsqueeze(0), out[:-1]], 0)
    da2 = da.reshape(-1, 4 * H)
    return ((da2 @ w_ih).view(T, B, F), da2.t() @ x.reshape(-1, F), da2.sum(0),
            da2.t() @ hprev.reshape(-1, H))


def input_moments(ax, w, den, eps, L: int, train: bool, running, empty):
    """(mean, var, rsqrt(var + eps)) per step of the input projection ``ax`` [T, B, G]: the
    batch's own in training, the steps past L (a ragged tail) borrowing step L's; the running
    statistics in eval (steps past the last slot use the last one; var is then ``empty``)."""
    T = ax.shape[0]
    if train:
        mx, vx, rx = masked_moments(ax, w, den, eps)
        if 0 <= L < T - 1:  # the tail borrows step L's moments
            mx[L + 1:], vx[L + 1:], rx[L + 1:] = mx[L], vx[L], rx[L]
        return mx, vx, rx
    mean, rsqrt = running_at_steps(running[0], running[1], T, eps)
    return mean, empty, rsqrt


def running_at_steps(mean: Tensor, var: Tensor, T: int, eps) -> tuple[Tensor, Tensor]:
    """(mean, 1/sqrt(var + eps)) of running statistics [S, K] at steps 0..T-1 ([T, K]): steps
    past the last slot use the last one."""
    idx = torch.arange(T, device=mean.device).clamp_max(mean.shape[0] - 1)
    return mean[idx], torch.rsqrt(var[idx] + eps)


def step_moments(v, wn, den_n, eps, n: int, L: int, train: bool, saved, running):
    """Step n's (mean, rsqrt(var + eps)) of ``v`` [B, K] (the recurrent projection or the cell):
    in training the batch's own, or step L's past L (a ragged tail), recorded in ``saved`` =
    (means, vars, rsqrts) [T, K]; in eval ``running`` = (mean, var) slots, the last one past
    the end."""
    if not train:
        i = min(n, running[0].shape[0] - 1)
        return running[0][i], torch.rsqrt(running[1][i] + eps)
    means, variances, rsqrts = saved
    if 0 <= L < n:
        mn, vn, rn = means[L], variances[L], rsqrts[L]
    else:
        mn, vn, rn = masked_moments(v, wn, den_n, eps)
    means[n], variances[n] = mn, vn
    return mn, rn

