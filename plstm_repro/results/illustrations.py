"""Illustrations that run a model rather than read tracked results: Fig. 2b (a hand-set Phased
LSTM's time gates and cell state) and Fig. 6a (a trained GRID network's time gates, from its
checkpoint). The figures drawn from result tables are :mod:`plstm_repro.results.plots`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..experiments import Artifact
from ..reference import paper_values
from . import plot_kit
from .plot_kit import _md_paper, _new_figure, _write_all

FIG2B_TAU = (5.0, 10.0, 20.0)  # ms
FIG2B_SHIFT = 2.0  # ms, identical for every neuron, as in the paper's Fig. 2b
FIG2B_R_ON = 0.05
FIG2B_DT = 0.05  # ms between samples: 5 samples in each 0.25 ms opening of tau = 5
FIG2B_T_END = 60.0  # ms


def fig2b_trace() -> pd.DataFrame:
    """Run a real PhasedLSTM(1, 3) with hand-set periods on a linearly rising input, step by step
    (chunks of length 1 carrying the state), in eval mode (leak 0). Returns t, x, k_j and c_j.

    Weights: input gate open (bias +8), forget gate shut (bias -8), output gate open, candidate
    g = tanh(x); so the proposed cell state is ~tanh(x) and c_j = k_j tanh(x_j) + (1 - k_j) c_{j-1}:
    it follows the input while the gate is open and holds otherwise.
    """
    import torch

    from ..cells import PhasedLSTM

    H = len(FIG2B_TAU)
    cell = PhasedLSTM(1, H, r_on=FIG2B_R_ON).eval()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.zero_()
        b = cell.bias_ih_l0
        b[0:H], b[H:2 * H], b[3 * H:4 * H] = 8.0, -8.0, 8.0  # gates i, f, (g), o
        cell.weight_ih_l0[2 * H:3 * H, 0] = 1.0  # candidate g = tanh(x)
        cell.tau_l0.copy_(torch.tensor(FIG2B_TAU))
        cell.shift_l0.fill_(FIG2B_SHIFT)
        cell.r_on_l0.fill_(FIG2B_R_ON)
        n = round(FIG2B_T_END / FIG2B_DT) + 1
        t = torch.arange(n, dtype=torch.float64) * FIG2B_DT
        x = (t / FIG2B_T_END).to(torch.float32)
        k = cell.time_gates(t[None], 0)[0]
        state, cs = None, []
        for j in range(n):
            _, state = cell(x[None, j:j + 1, None], t[None, j:j + 1], state)
            cs.append(state[1][0, 0].clone())
        c = torch.stack(cs)
    df = pd.DataFrame({"t_ms": t.numpy(), "x": x.numpy()})
    for i, tau in enumerate(FIG2B_TAU):
        df[f"k_tau{tau:g}"] = k[:, i].double().numpy()
    for i, tau in enumerate(FIG2B_TAU):
        df[f"c_tau{tau:g}"] = c[:, i].double().numpy()
    return df


def plot_fig2b(artifact: Artifact, history: pd.DataFrame | None, out_dir: Path,
               scale: str) -> list[Path]:
    """The paper's illustration, drawn from a real PhasedLSTM (``history`` is not used)."""
    ref = paper_values(artifact.id)
    df = fig2b_trace()
    fig = _new_figure(7.0, 6.0)
    ax_x, ax_k, ax_c = fig.subplots(3, 1, sharex=True, height_ratios=(1, 1.4, 1.4))
    ax_x.plot(df["t_ms"], df["x"], color="black")
    ax_x.set_ylabel("input x")
    colors = ["#e31a1c", "#1f78b4", "#33a02c"]
    for i, tau in enumerate(FIG2B_TAU):
        off = (len(FIG2B_TAU) - 1 - i) * 1.25
        ax_k.plot(df["t_ms"], df[f"k_tau{tau:g}"] + off, color=colors[i], lw=1.0)
        ax_k.text(FIG2B_T_END + 0.8, off + 0.1, f"τ = {tau:g} ms", color=colors[i], fontsize=8)
        ax_c.plot(df["t_ms"], df[f"c_tau{tau:g}"], color=colors[i], lw=1.4,
                  label=f"τ = {tau:g} ms")
    ax_k.set_yticks([])
    ax_k.set_ylabel("time gate $k_t$")
    ax_c.set_ylabel("cell state $c_t$")
    ax_c.set_xlabel("Time [ms]")
    ax_c.legend(fontsize=8, loc="upper left")
    ax_c.set_xlim(0, FIG2B_T_END + 6)
    fig.suptitle(f"{artifact.paper_ref}: a PhasedLSTM(1, {len(FIG2B_TAU)}) with s = "
                 f"{FIG2B_SHIFT:g} ms, r_on = {FIG2B_R_ON:g}, sampled every {FIG2B_DT:g} ms",
                 fontsize=10)

    lines = [f"# {artifact.paper_ref}: {artifact.title}", "",
             (f"Drawn from a real `PhasedLSTM(1, {len(FIG2B_TAU)}, r_on={FIG2B_R_ON})` in eval "
             f"mode (leak 0), run one sample at a time carrying its state (scale `{scale}` does "
             "not change it; no training involved)."), "",
             "| neuron | tau (ms) | shift s (ms) | r_on | open per period (ms) |",
             "|---|---|---|---|---|"]
    for i, tau in enumerate(FIG2B_TAU):
        lines.append(f"| {i} | {tau:g} | {FIG2B_SHIFT:g} | {FIG2B_R_ON:g} | "
                     f"{tau * FIG2B_R_ON:g} |")
    lines += ["", (f"Input: x(t) = t / {FIG2B_T_END:g} ms for t in [0, {FIG2B_T_END:g}] ms, "
              f"every {FIG2B_DT:g} ms. Weights set by hand: input and output gates open, forget "
              "gate shut, candidate tanh(x), so c_t moves to tanh(x) while k_t is open and holds "
              f"while it is shut. The traces are in `{artifact.id}.csv`."), ""]
    lines += _md_paper(ref)
    return _write_all(fig, df, "\n".join(lines), out_dir, artifact.id)


# Table 1's rows: (label, tracked metric, step: 1 = first epoch, None = last, paper's key)


def _fig6a_model(ck: Path):
    """(config, the trained model in eval mode, the first test utterance) of a checkpoint."""
    import torch

    from ..config import from_dict
    from ..data import load_split
    from ..train import load_checkpoint, make_model, restore_state

    state = load_checkpoint(ck)
    cfg = from_dict(state["config"])
    data = load_split(cfg.data, "test", cfg.seed)
    model = make_model(cfg, data.input_size, data.num_outputs, data)
    restore_state(model, state["model"], ck)
    model.eval()
    return cfg, model, data.batch(torch.tensor([0]))


def plot_fig6a(artifact: Artifact, history: pd.DataFrame, out_dir: Path,
               root: Path) -> list[Path]:
    """Fig. 6a from a trained Phased LSTM: one test utterance's video frames and MFCCs, and the
    openness k of the time gates of a few neurons of each layer over time (leak 0, as at test).
    Needs the run's checkpoint (``<root>/checkpoints/<run>/last.pt``): skipped, with no
    file, where there is none."""
    import torch

    from ..layout import checkpoint_path

    phased = history[history["variant"] == "Phased LSTM"].sort_values("condition")
    ck = next((checkpoint_path(root, r) for r in phased["run_id"].unique()[::-1]
               if checkpoint_path(root, r).is_file()), None)
    if ck is None:
        return []
    cfg, model, b = _fig6a_model(ck)
    with torch.no_grad():
        _, tu, lu = model.layer_outputs(*b.inputs[:6])
    t = tu[0, :lu[0]]
    fig = _new_figure(9.0, 8.0)
    names = ("video", "audio", "merged1", "merged2")
    axes = fig.subplots(2 + len(names), 1, sharex=True,
                        height_ratios=(1.2, 1.2) + (1.0,) * len(names))
    nv = int(b.video_len[0])
    frames = b.video[0, :nv, 0].numpy()
    step = max(1, nv // 12)
    strip = np.concatenate([frames[i] for i in range(0, nv, step)], axis=1)
    axes[0].imshow(strip, cmap="gray", aspect="auto", extent=(float(b.video_t[0, 0]),
                   float(b.video_t[0, nv - 1]) + 40.0 * step, 0, 1))
    axes[0].set_yticks([])
    axes[0].set_ylabel("video", fontsize=8)
    na = int(b.audio_len[0])
    axes[1].imshow(b.audio[0, :na].numpy().T, aspect="auto", origin="lower", cmap="magma",
                   extent=(float(b.audio_t[0, 0]), float(b.audio_t[0, na - 1]), 0, 39))
    axes[1].set_ylabel("MFCC", fontsize=8)
    mask = torch.ones(1, int(lu[0]), dtype=torch.bool)
    for ax, name in zip(axes[2:], names):
        rnn = model.layers[name]
        k = rnn.time_gates(t.unsqueeze(0), 0, mask)[0].detach().numpy()
        for j in range(min(4, k.shape[1])):  # a stem per step of the union clock
            base = 1.2 * j
            ax.vlines(t.numpy(), base, base + k[:, j], color=f"C{j}", lw=1.0)
            ax.axhline(base, color=f"C{j}", lw=0.3)
        ax.set_yticks([])
        ax.set_ylabel(f"{name}\nk, 4 neurons", fontsize=7)
    for we in b.word_end[0][b.y[0] >= 0].numpy():
        for ax in axes:
            ax.axvline(we, color="gray", lw=0.5, ls=":")
    axes[-1].set_xlabel("time [ms] (dotted: word ends, where the words are read out)")
    fig.suptitle(f"Fig. 6a from run {ck.parent.name[:8]} ({cfg.data.audio} resolution): inputs "
                 "and time-gate openness" + (" (SYNTHETIC)" if artifact.synthetic else ""),
                 fontsize=9)
    return plot_kit._save_figure(fig, Path(out_dir), "fig6a")
