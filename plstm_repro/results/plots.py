"""One function per paper figure, drawn from tracked results only, with the paper's numbers beside.

Each ``plot_*`` has the signature ``f(artifact, history, out_dir, scale) -> list[Path]`` and writes
``<id>.png``, ``<id>.pdf``, ``<id>.csv`` (our numbers) and ``<id>.md`` (ours beside the paper's,
with the scale and the number of seeds) into ``out_dir``, each through a temporary name and a
rename so that a reader never sees half a file.

``history`` is the tracker's long table (``tracking.HISTORY_COLUMNS``): one row per logged value,
columns ``run_id, variant, condition, seed, metric, step, value``, holding the runs of this
artifact at this scale. Rows whose variant or condition is not one of the artifact's labels are
ignored. Where several runs share (variant, condition, seed), the one that got furthest (largest
last step of the figure's metric; the first listed on a tie) is used. Per-epoch metrics have
``step`` = epoch (from 1); step-logged ones (``step_*``) have ``step`` = optimiser step.

Spread over seeds is the population std (numpy's default, ddof=0), as in the authors' notebook.
The paper's numbers come from :mod:`plstm_repro.reference` and are only ever shown as targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..experiments import Artifact
from ..reference import paper_values
from . import plot_kit
from .plot_kit import (
    COLORS,
    CONDITION_NAMES,
    _color,
    _curve_panel,
    _curves,
    _final,
    _fmt,
    _markers,
    _md_header,
    _md_paper,
    _new_figure,
    _seeds_text,
    _select,
    _spread,
    _whole_numbers,
    _write_all,
)
from .plots_events import (  # noqa: F401
    MODALITY_METRICS,
    TABLE1_ROWS,
    fig6c_rows,
    plot_fig6c,
    plot_table1,
)


def plot_fig3d(artifact: Artifact, history: pd.DataFrame, out_dir: Path, scale: str) -> list[Path]:
    """Accuracy at the last epoch per sampling condition: ours (mean ± std) beside the paper's."""
    metric = artifact.metric or "test_acc"
    h = _select(artifact, history, scale, (metric,))
    ref = paper_values(artifact.id)
    fin = _final(h, metric)
    rows = []
    for cond in artifact.conditions:
        for var in artifact.variants:
            sub = fin[(fin["variant"] == var.label) & (fin["condition"] == cond.label)]
            rows.append({"variant": var.label, "condition": cond.label, "metric": metric,
                         "epoch_min": int(sub["step"].min()), "epoch_max": int(sub["step"].max()),
                         **_spread(sub["value"]),
                         "seeds": " ".join(str(s) for s in sorted(sub["seed"]))})
    table = pd.DataFrame(rows)

    fig = _new_figure(9.0, 4.8)
    ax = fig.add_subplot()
    n_var = len(artifact.variants)
    width = 0.8 / (2 * n_var)
    low = 100.0
    for i, var in enumerate(artifact.variants):
        color = _color(var.label, i)
        for j, cond in enumerate(artifact.conditions):
            r = table[(table["variant"] == var.label) & (table["condition"] == cond.label)].iloc[0]
            x = j - 0.4 + (2 * i + 0.5) * width
            ax.bar(x, r["mean"], width, color=color, edgecolor="black", linewidth=0.6,
                   yerr=r["std"] if r["n_seeds"] > 1 else None, capsize=3,
                   label=(var.label if "(ours)" in var.label else f"{var.label} (ours)")
                   if j == 0 else None)
            ax.text(x, min(r["mean"] + (r["std"] if r["n_seeds"] > 1 else 0), 100) + 0.6,
                    f"n={r['n_seeds']}", ha="center", va="bottom", fontsize=7)
            low = min(low, r["mean"] - (r["std"] if r["n_seeds"] > 1 else 0))
            pv = ref.get(var.label, cond.label)
            if pv is not None and pv.mean is not None:
                ax.bar(x + width, pv.mean, width, color="white", edgecolor=color, hatch="///",
                       linewidth=1.0, yerr=pv.std, capsize=3, ecolor="gray",
                       label=f"{var.label} (paper)" if j == 0 else None)
                low = min(low, pv.mean - (pv.std or 0))
    ax.set_xticks(range(len(artifact.conditions)),
                  [CONDITION_NAMES.get(c.label, c.label) for c in artifact.conditions])
    ax.set_ylim(min(50.0, 10 * np.floor(low / 10)), 103)
    ax.axhline(50, color="gray", lw=0.8, ls=":")
    epochs = sorted(set(table["epoch_max"]))
    ax.set_ylabel(f"Accuracy at {'/'.join(map(str, epochs))} epochs [%]")
    ax.set_title(f"{artifact.paper_ref}, scale {scale}: ours (solid, mean ± std over seeds) vs "
                 f"paper (hatched, epoch 70, 5 seeds)", fontsize=9)
    ax.legend(fontsize=8, ncols=n_var, loc="upper center", bbox_to_anchor=(0.5, -0.08),
              frameon=False)

    lines = _fig3d_markdown(artifact, table, ref, metric, scale)
    return _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)


def _fig3d_markdown(artifact: Artifact, table: pd.DataFrame, ref, metric: str,
                    scale: str) -> list[str]:
    """Fig. 3d's table: ours per model and condition beside the paper's."""
    lines = _md_header(artifact, scale, f"Metric `{metric}` at the last epoch of each run; "
                                        "mean ± std (ddof=0) over seeds.")
    lines += [("| model | condition | ours: epoch | ours: mean ± std (%) | ours: seeds | "
              "paper's: epoch 70, 5 seeds (%) |"), "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        pv = ref.get(r.variant, r.condition)
        ep = str(r.epoch_max) if r.epoch_min == r.epoch_max else f"{r.epoch_min}-{r.epoch_max}"
        lines.append(f"| {r.variant} | {r.condition} | {ep} | {_fmt(r.mean, r.std, r.n_seeds)} | "
                     f"{_seeds_text(artifact, scale, r.n_seeds)} | "
                     f"{pv.format() if pv else '-'} |")
    lines += [""] + _md_paper(ref)
    return lines


def plot_fig4a(artifact: Artifact, history: pd.DataFrame, out_dir: Path, scale: str) -> list[Path]:
    """Test accuracy over epochs per model: mean line with min-max shading over seeds."""
    metric = artifact.metric or "test_acc"
    h = _select(artifact, history, scale, (metric,))
    ref = paper_values(artifact.id)
    curves = _curves(h, metric, artifact)
    cond = artifact.conditions[0].label

    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    _curve_panel(ax, curves, artifact, cond, shade=True, colors=COLORS)
    ax.axhline(50, color="gray", lw=0.8, ls=":", label="chance (50 %)")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Test accuracy [%]")
    ax.set_title(f"{artifact.paper_ref}, scale {scale}: mean, min-max shading over seeds\n"
                 "(the paper gives no numbers for this figure)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")

    lines = _md_header(artifact, scale, f"Metric `{metric}` per epoch; the full curves are in "
                                        f"`{artifact.id}.csv`.")
    lines += [("| model | ours: last epoch | ours: accuracy at it, mean ± std (min-max) (%) | "
              "ours: best mean (%) at epoch | ours: seeds | paper's |"),
              "|---|---|---|---|---|---|"]
    for var in artifact.variants:
        c = curves[curves["variant"] == var.label]
        last = c.iloc[-1]
        best = c.loc[c["mean"].idxmax()]
        n = int(last["n_seeds"])
        lines.append(f"| {var.label} | {int(last['step'])} | {_fmt(last['mean'], last['std'], n)} "
                     f"({last['min']:.2f}-{last['max']:.2f}) | {best['mean']:.2f} at "
                     f"{int(best['step'])} | {_seeds_text(artifact, scale, n)} | "
                     f"no number given (qualitative only) |")
    lines += [""] + _md_paper(ref)
    return _write_all(fig, curves, "\n".join(lines), out_dir, artifact.id)


MSE_ZERO = 1.0 / 6.0  # MSE of always predicting 0: Var(u1 + u2) for u ~ U(-0.5, 0.5)
MSE_THRESHOLD = 1e-2


def plot_fig4b(artifact: Artifact, history: pd.DataFrame, out_dir: Path, scale: str) -> list[Path]:
    """Adding task: test MSE over epochs (log scale), one line per variant, mean over seeds."""
    metric = artifact.metric or "test_mse"
    h = _select(artifact, history, scale, (metric,))
    ref = paper_values(artifact.id)
    curves = _curves(h, metric, artifact)
    cond = artifact.conditions[0].label
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    phased = [v.label for v in artifact.variants if v.label != "LSTM"]
    colors = {lab: cmap(0.15 + 0.7 * i / max(1, len(phased) - 1)) for i, lab in enumerate(phased)}
    colors["LSTM"] = "#e31a1c"  # red: apart from the viridis of the tau ranges

    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    _curve_panel(ax, curves, artifact, cond, shade=True, colors=colors, log=True)
    ax.axhline(MSE_ZERO, color="gray", lw=0.8, ls=":", label="predicting 0 (MSE 1/6)")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Test MSE")
    ax.set_title(f"{artifact.paper_ref}, scale {scale}: mean over seeds\n(the paper gives no "
                 "numbers; it reports that longer tau converges faster)", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")

    lines = _md_header(artifact, scale, f"Metric `{metric}` per epoch (mean over seeds); the "
                                        f"full curves are in `{artifact.id}.csv`. The "
                                        "MSE of always predicting 0 is 1/6 ≈ 0.167.")
    lines += [(f"| model | ours: last epoch | ours: MSE at it | ours: best MSE | ours: first epoch "
              f"with MSE < {MSE_THRESHOLD:g} | ours: seeds | paper's |"),
              "|---|---|---|---|---|---|---|"]
    for var in artifact.variants:
        c = curves[curves["variant"] == var.label]
        last = c.iloc[-1]
        below = c[c["mean"] < MSE_THRESHOLD]
        first = str(int(below["step"].iloc[0])) if len(below) else "not reached"
        n = int(last["n_seeds"])
        lines.append(f"| {var.label} | {int(last['step'])} | {last['mean']:.3g} | "
                     f"{c['mean'].min():.3g} | {first} | {_seeds_text(artifact, scale, n)} | "
                     f"no number given (qualitative only) |")
    lines += [""] + _md_paper(ref)
    return _write_all(fig, curves, "\n".join(lines), out_dir, artifact.id)


TAIL = 5  # logged points averaged for the "final" training accuracy (per-batch values are noisy)


def plot_training_curves(artifact: Artifact, history: pd.DataFrame, out_dir: Path,
                         scale: str) -> list[Path]:
    """Training accuracy and cross-entropy over optimiser steps (as the seed's mnist_acc.png and
    mnist_ce.png), one line per variant, mean over seeds with min-max shading."""
    metrics = ("step_train_acc", "step_train_loss")
    h = _select(artifact, history, scale, metrics)
    ref = paper_values(artifact.id)
    acc = _curves(h, "step_train_acc", artifact)
    loss = _curves(h, "step_train_loss", artifact)
    cond = artifact.conditions[0].label

    fig = _new_figure(11.0, 4.2)
    ax_acc, ax_ce = fig.subplots(1, 2)
    _curve_panel(ax_acc, acc, artifact, cond, shade=True, colors=COLORS)
    _curve_panel(ax_ce, loss, artifact, cond, shade=True, colors=COLORS)
    for i, var in enumerate(artifact.variants):
        pv = ref.get(var.label, cond)
        if pv is None:
            continue
        color = _color(var.label, i)
        label = f"{var.label}: seed's plot at 2000 steps"
        if pv.mean is not None:
            ax_acc.plot([2000], [pv.mean], marker="*", ms=13, color=color, mec="black",
                        ls="none", label=label)
        else:
            ax_acc.errorbar([2000], [(pv.low + pv.high) / 2], yerr=[(pv.high - pv.low) / 2],
                            color=color, capsize=6, lw=2.5, marker="_", label=label)
    ax_acc.set_xlabel("Step")
    ax_acc.set_ylabel("Training accuracy (batch) [%]")
    ax_acc.set_title("Training accuracy", fontsize=10)
    ax_acc.legend(fontsize=8)
    ax_ce.set_xlabel("Step")
    ax_ce.set_ylabel("Training cross-entropy (batch)")
    ax_ce.set_title("Training loss", fontsize=10)
    ax_ce.legend(fontsize=8)
    note = ("seed's outcome shown as markers" if ref.has_numbers
            else "offline stand-in: no paper or seed number")
    fig.suptitle(f"{artifact.title}; scale {scale} ({note})", fontsize=10)

    table = pd.concat([acc, loss], ignore_index=True)
    lines = _md_header(artifact, scale, f"`step_train_acc` and `step_train_loss` logged every few "
                                        f"optimiser steps; 'final' = mean of the last {TAIL} "
                                        "logged points of each run (per-batch values are noisy), "
                                        f"then over seeds. Full curves in `{artifact.id}.csv`.")
    lines += [("| model | ours: last step | ours: final accuracy (%) | ours: final cross-entropy | "
              "ours: seeds | reference (seed repository) |"), "|---|---|---|---|---|---|"]
    for var in artifact.variants:
        a = acc[acc["variant"] == var.label]
        lo = loss[loss["variant"] == var.label]
        n = int(a["n_seeds"].max())
        pv = ref.get(var.label, cond)
        refv = (f"{pv.format(0)} % at ~2000 steps" if pv is not None else
                "none (no paper number for this dataset)")
        lines.append(f"| {var.label} | {int(a['step'].iloc[-1])} | "
                     f"{a['mean'].tail(TAIL).mean():.2f} | {lo['mean'].tail(TAIL).mean():.4f} | "
                     f"{_seeds_text(artifact, scale, n)} | {refv} |")
    lines += [""] + _md_paper(ref)
    return _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)


# Fig. 2b: hand-set neurons of one real PhasedLSTM
def plot_run_curves(epochs: list[dict[str, float]], out_dir: Path, title: str) -> Path:
    """One run's own figure: loss, and accuracy or MSE, over epochs (logged with the run)."""
    df = pd.DataFrame(epochs, index=range(1, len(epochs) + 1))
    second = [m for m in ("train_acc", "test_acc") if m in df] or \
        [m for m in ("test_mse",) if m in df]
    fig = _new_figure(8, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    for m in ("train_loss", "test_loss"):
        ax1.plot(df.index, df[m], label=m, **_markers(len(df)))
    ax1.set(xlabel="epoch", ylabel="loss")
    for m in second:
        ax2.plot(df.index, df[m], label=m, **_markers(len(df)))
    ax2.set(xlabel="epoch", ylabel="accuracy (%)" if "acc" in second[0] else "MSE")
    if second == ["test_mse"]:
        ax2.set_yscale("log")
    for ax in (ax1, ax2):
        _whole_numbers(ax, df.index)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plot_kit._save_figure(fig, Path(out_dir), "curves")[0]
