"""An independent float64 NumPy implementation of the Phased LSTM, eq. 1-10 of the paper.

Written from the equations alone (no code shared with plstm_repro), step by step and neuron by
neuron where it keeps the formulas visible. Used as the oracle in tests.
"""

import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gate_np(t, tau, s, r_on, alpha):
    """eq. 6 for scalar t and per-neuron arrays tau, s, r_on."""
    phi = np.mod(t - s, tau) / tau  # numpy mod is floor-mod: result has the sign of tau
    k = np.empty_like(phi)
    for j in range(phi.shape[0]):
        if phi[j] < r_on[j] / 2:
            k[j] = 2 * phi[j] / r_on[j]
        elif phi[j] < r_on[j]:
            k[j] = 2 - 2 * phi[j] / r_on[j]
        else:
            k[j] = alpha * phi[j]
    return k


def plstm_np(x, t, lengths, layers, alpha):
    """x [B, T, F], t [B, T] float64, lengths [B]; layers: list of dicts of numpy arrays
    (W_ih [4H, F], W_hh [4H, H], b_ih, b_hh, tau, shift, r_on). Returns out [B, T, H] (0 past
    length), h_n, c_n [L, B, H]."""
    B, T, _ = x.shape
    inp = x.astype(np.float64)
    hs, cs = [], []
    for p in layers:
        H = p["W_hh"].shape[1]
        out = np.zeros((B, T, H))
        h_fin, c_fin = np.zeros((B, H)), np.zeros((B, H))
        for b in range(B):
            h, c = np.zeros(H), np.zeros(H)
            for n in range(lengths[b]):
                z = p["W_ih"] @ inp[b, n] + p["b_ih"] + p["W_hh"] @ h + p["b_hh"]
                i, f, g, o = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), \
                    sigmoid(z[3 * H:])
                c_tilde = f * c + i * g                    # eq. 7
                h_tilde = o * np.tanh(c_tilde)             # eq. 9
                k = gate_np(t[b, n], p["tau"], p["shift"], p["r_on"], alpha)
                c = k * c_tilde + (1 - k) * c              # eq. 8
                h = k * h_tilde + (1 - k) * h              # eq. 10
                out[b, n] = h
            h_fin[b], c_fin[b] = h, c
        hs.append(h_fin)
        cs.append(c_fin)
        inp = out
    return inp, np.stack(hs), np.stack(cs)


def layers_of(module):
    """Pull the per-layer parameters of a PhasedLSTM into numpy float64."""
    layers = []
    for k in range(module.num_layers):
        names = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh",
                 "tau": "tau", "shift": "shift", "r_on": "r_on"}
        layers.append({key: getattr(module, f"{n}_l{k}").detach().double().numpy()
                       for key, n in names.items()})
    return layers
