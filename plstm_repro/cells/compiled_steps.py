r"""The step functions of the GPU recurrence (:mod:`.compiled`): plain PyTorch, one call per step
of the Phased LSTM and BN-LSTM forward and hand-written backward, that inductor compiles into
one pointwise kernel each (eq. 6-11 of the paper for the Phased LSTM; Cooijmans et al.'s batch
norm for the BN-LSTM). Run eagerly they are the same algorithm (the fast tests use that)."""

from __future__ import annotations

import torch

from .functional import masked_moments


# ---------------------------------------------------------------------------- Phased LSTM steps
def _time_gate(t_n, m_n, tau, shift, r, leak, dtype):
    """k [B, H] in ``dtype`` (0 at padded rows), and d k / d phi and d k / d r_on (float64)."""
    d = t_n.unsqueeze(-1) - shift
    phi = torch.remainder(d, tau) / tau
    up = 2.0 * phi / r
    rising, falling = phi < 0.5 * r, phi < r
    keep = m_n.unsqueeze(-1)
    k64 = torch.where(keep, torch.where(rising, up, torch.where(falling, 2.0 - up, leak * phi)),
                      0.0)
    slope = torch.where(rising, 2.0 / r, torch.where(falling, -2.0 / r, leak))
    slope = torch.where(keep, slope, 0.0)
    k = k64.to(dtype)
    kk = k.to(torch.float64)  # as the C++ kernels: d k / d r from the k actually used
    dkdr = torch.where(keep & rising, -kk, torch.where(keep & falling, 2.0 - kk, 0.0)) / r
    return k, d, slope, dkdr


def plstm_step_fwd(a, h, c, t_n, m_n, tau, shift, r, leak):
    """One step after the GEMM: a [B, 4H] pre-activations (biases in), (h, c) [B, H] previous
    state, t_n [B] float64, m_n [B] bool. Returns (h_n, c_n, acts [B, 4H] = i, f, g, o)."""
    k, _, _, _ = _time_gate(t_n, m_n, tau, shift, r, leak, a.dtype)
    ai, af, ag, ao = a.chunk(4, 1)
    i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
    ct = f * c + i * g
    h_new = torch.lerp(h, o * torch.tanh(ct), k)
    c_new = torch.lerp(c, ct, k)
    return h_new, c_new, torch.cat([i, f, g, o], 1)


def plstm_step_bwd(dh, gout_n, dc, acts_n, hp, cp, t_n, m_n, tau, shift, r, leak,
                   acc_tau, acc_shift, acc_r):
    """One BPTT step before the carry GEMM. Returns (da [B, 4H], dh_keep, dc_{n-1}, and the
    per-sample float64 sums of d phi (t - s), d phi, d k/d r); d h_{n-1} = dh_keep + da W_hh."""
    k, d, slope, dkdr = _time_gate(t_n, m_n, tau, shift, r, leak, dh.dtype)
    i, f, g, o = acts_n.chunk(4, 1)
    ct = f * cp + i * g  # c~ and tanh c~, recomputed rather than saved
    tc = torch.tanh(ct)
    dhv = dh + gout_n
    dht = k * dhv
    dct = k * dc + dht * o * (1 - tc * tc)
    dk = (dhv * (o * tc - hp) + dc * (ct - cp)).to(torch.float64)
    da = torch.cat([dct * g * i * (1 - i), dct * cp * f * (1 - f), dct * i * (1 - g * g),
                    dht * tc * o * (1 - o)], 1)
    dphi = dk * slope
    return (da, dhv * (1 - k), dc * (1 - k) + dct * f, acc_tau + dphi * d, acc_shift + dphi,
            acc_r + dk * dkdr)


# ------------------------------------------------------------------------------ BN-LSTM steps
def bn_step_fwd(ah, xs_n, h, c, w, den, own, bias, gx, gh, gc, bc, mh_n, vh_n, rh_n, mc_n,
                vc_n, rc_n, eps_h, eps_c, train: bool):
    """One BN-LSTM step after the GEMM ah = h W_hh^T. ``w`` [B, 1] bool (valid rows), ``den``
    [1] their count (>= 1). In train the moments of ah and c_n are computed here where ``own``
    [1] (bool) is set, and the given ones (a ragged tail's borrowed moments) are used where it
    is not; in eval the running ones are given. Returns the new (h, c), the output row, what
    the backward keeps (hh, acts, c^, tanh) and the moments (mh, vh, rh, mc, vc, rc)."""
    if train:
        mh_n, vh_n, rh_n = (torch.where(own, a, b) for a, b in
                            zip(masked_moments(ah, w, den, eps_h), (mh_n, vh_n, rh_n)))
    hh = (ah - mh_n) * rh_n
    z = (xs_n * gx + bias) + hh * gh
    zi, zf, zg, zo = z.chunk(4, 1)
    i, f, g, o = torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)
    cn = f * c + i * g
    if train:
        mc_n, vc_n, rc_n = (torch.where(own, a, b) for a, b in
                            zip(masked_moments(cn, w, den, eps_c), (mc_n, vc_n, rc_n)))
    ch = (cn - mc_n) * rc_n
    t = torch.tanh(ch * gc + bc)
    hn = o * t
    a = torch.cat([i, f, g, o], 1)
    return (torch.where(w, hn, h), torch.where(w, cn, c), torch.where(w, hn, 0.0),
            torch.where(w, hh, 0.0), torch.where(w, a, 0.0), torch.where(w, ch, 0.0),
            torch.where(w, t, 0.0), mh_n, vh_n, rh_n, mc_n, vc_n, rc_n)


def bn_step_bwd(dh, gout_n, dc, acts_n, th_n, ch_n, cp, xs_n, hs_n, rx_n, rh_n, rc_n, w, inv,
                own, gx, gh, gc, acc_gc, acc_bc, acc_b, acc_gx, acc_gh, train: bool):
    """One BN-LSTM BPTT step before the carry GEMM (through the batch moments where ``own``
    [1] is set in train; a borrowed tail's moments are constants). Returns (d ax, d ah [B, 4H] (0 at padded
    rows), dh_keep, dc_{n-1}, the float64 sums for gamma_c, beta_c, b, gamma_x, gamma_h);
    d h_{n-1} = dh_keep + d ah W_hh (padded rows keep their dh: their d ah is 0)."""
    i, f, g, o = acts_n.chunk(4, 1)
    t, ch = th_n, ch_n
    dhv = torch.where(w, dh + gout_n, 0.0)
    dy = dhv * o * (1 - t * t)
    dzo = dhv * t * o * (1 - o)
    s1c, s2c = dy.sum(0), (dy * ch).sum(0)
    dv = torch.where(own, dy - s1c * inv - ch * (s2c * inv), dy) if train else dy
    dcn = dc + gc * rc_n * dv
    dz = torch.cat([dcn * g * i * (1 - i), dcn * cp * f * (1 - f), dcn * i * (1 - g * g), dzo], 1)
    dz = torch.where(w, dz, 0.0)
    dcp = torch.where(w, dcn * f, dc)
    s1, s2x, s2h = dz.sum(0), (dz * xs_n).sum(0), (dz * hs_n).sum(0)
    ux = torch.where(own, dz - s1 * inv - xs_n * (s2x * inv), dz) if train else dz
    uh = torch.where(own, dz - s1 * inv - hs_n * (s2h * inv), dz) if train else dz
    dxn = torch.where(w, gx * rx_n * ux, 0.0)
    dhn = torch.where(w, gh * rh_n * uh, 0.0)
    f64 = torch.float64
    return (dxn, dhn, torch.where(w, 0.0, dh), dcp, acc_gc + s2c.to(f64), acc_bc + s1c.to(f64),
            acc_b + s1.to(f64), acc_gx + s2x.to(f64), acc_gh + s2h.to(f64))


def detached(*tensors):
    """The tensors detached: the step functions see the same requires_grad flags at every
    step (the first step's h0 is a leaf that requires grad, later ones are not), else dynamo
    compiles a second graph for the first step."""
    return [v.detach() for v in tensors]


STEPS = {"plstm_fwd": plstm_step_fwd, "plstm_bwd": plstm_step_bwd, "bn_fwd": bn_step_fwd,
          "bn_bwd": bn_step_bwd}
