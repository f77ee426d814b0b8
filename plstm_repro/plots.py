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

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import IncompleteGrid, UsageError
from .experiments import Artifact
from .reference import PaperReference, paper_values

COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]
# the authors' notebook colours (A_Freq_Task.ipynb), so our figures read like theirs
COLORS = {"Phased LSTM": "#33a02c", "BN-LSTM": "#6a3d9a", "LSTM": "#1f78b4"}
CONDITION_NAMES = {"standard": "Standard sampling", "highres": "High resolution sampling",
                   "async": "Async. sampling"}


# --------------------------------------------------------------------------- data helpers

def _reproduce_hint(artifact: Artifact, scale: str) -> str:
    return f"run `plstm reproduce {artifact.id} --scale {scale}` first"


def _select(artifact: Artifact, history: pd.DataFrame | None, scale: str,
            metrics: tuple[str, ...]) -> pd.DataFrame:
    """This artifact's rows for ``metrics``, one run per (variant, condition, seed).

    Raises ValueError naming every (variant, condition) that has no value of a needed metric.
    """
    if scale not in artifact.scales:
        raise UsageError(f"{artifact.id}: unknown scale {scale!r}; valid: "
                         f"{', '.join(artifact.scales)}")
    if history is None or len(history) == 0:
        raise IncompleteGrid(f"{artifact.id} ({scale}): no tracked runs at all; "
                         f"{_reproduce_hint(artifact, scale)}")
    lacking = [c for c in COLUMNS if c not in history.columns]
    if lacking:
        raise ValueError(f"{artifact.id}: history lacks columns {lacking}; expected {COLUMNS}")
    variants = [v.label for v in artifact.variants]
    conditions = [c.label for c in artifact.conditions]
    h = history[history["variant"].isin(variants) & history["condition"].isin(conditions)
                & history["metric"].isin(metrics)]
    h = h.dropna(subset=["value"])
    missing = []
    for cond in conditions:
        for var in variants:
            sub = h[(h["variant"] == var) & (h["condition"] == cond)]
            absent = [m for m in metrics if m not in set(sub["metric"])]
            if absent:
                missing.append(f"{var} / {cond} (no {', '.join(absent)})")
    if missing:
        raise IncompleteGrid(f"{artifact.id} ({scale}): missing tracked results for "
                         f"{len(missing)} of {len(variants) * len(conditions)} "
                         f"variant/condition pairs: {'; '.join(missing)}. "
                         f"{_reproduce_hint(artifact, scale)}")
    # one run per (variant, condition, seed): the one whose primary metric got furthest
    prim = h[h["metric"] == metrics[0]]
    reach = prim.groupby("run_id", sort=False)["step"].max()
    runs = prim.drop_duplicates("run_id")[["run_id", "variant", "condition", "seed"]].copy()
    runs["reach"] = runs["run_id"].map(reach)
    runs = runs.sort_values("reach", ascending=False, kind="stable")
    keep = runs.drop_duplicates(["variant", "condition", "seed"])["run_id"]
    h = h[h["run_id"].isin(set(keep))]
    # a value logged twice at one step (a resumed run): the later row wins
    return h.drop_duplicates(["run_id", "metric", "step"], keep="last")


def _final(h: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per run: the value at its last logged step of ``metric``."""
    m = h[h["metric"] == metric].sort_values("step", kind="stable")
    return m.groupby("run_id", sort=False).tail(1)


def _spread(values: pd.Series) -> dict:
    v = values.to_numpy(dtype=float)
    return {"n_seeds": len(v), "mean": float(np.mean(v)), "std": float(np.std(v)),
            "min": float(np.min(v)), "max": float(np.max(v))}


def _curves(h: pd.DataFrame, metric: str, artifact: Artifact) -> pd.DataFrame:
    """Mean / std / min / max over seeds at each step, per (variant, condition).

    Kept only at steps every run of that (variant, condition) reached (clipped to the shortest
    run, as the authors' notebook does), so that the mean never changes which seeds it averages.
    """
    m = h[h["metric"] == metric]
    rows = []
    for cond in artifact.conditions:
        for var in artifact.variants:
            sub = m[(m["variant"] == var.label) & (m["condition"] == cond.label)]
            n_runs = sub["run_id"].nunique()
            for step, g in sub.groupby("step"):
                if g["run_id"].nunique() < n_runs:
                    continue
                rows.append({"variant": var.label, "condition": cond.label, "metric": metric,
                             "step": int(step), **_spread(g["value"])})
    return pd.DataFrame(rows, columns=["variant", "condition", "metric", "step", "n_seeds",
                                       "mean", "std", "min", "max"])


def _seeds_text(artifact: Artifact, scale: str, n: int) -> str:
    planned = artifact.scales[scale].seeds
    return f"{n} of {planned}" if n < planned else f"{n}"


# --------------------------------------------------------------------------- file helpers

def _replace(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_text(path: Path, text: str) -> Path:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    return _replace(tmp, path)


def _write_csv(path: Path, df: pd.DataFrame) -> Path:
    tmp = _tmp(path)
    df.to_csv(tmp, index=False)
    return _replace(tmp, path)


def _new_figure(*size: float):
    """A pyplot-free Figure on the Agg canvas: no global state, no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    out = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        path = out_dir / f"{name}.{ext}"
        tmp = _tmp(path)
        fig.savefig(tmp, format=ext, dpi=150, metadata=meta)
        out.append(_replace(tmp, path))
    return out


def _write_all(fig, table: pd.DataFrame, md: str, out_dir: Path, name: str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = _save_figure(fig, out_dir, name)
    paths.append(_write_csv(out_dir / f"{name}.csv", table))
    paths.append(_write_text(out_dir / f"{name}.md", md))
    return paths


def _fmt(mean: float, std: float | None, n: int, digits: int = 2) -> str:
    if n > 1 and std is not None:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def _md_header(artifact: Artifact, scale: str, extra: str = "") -> list[str]:
    sc = artifact.scales[scale]
    lines = [f"# {artifact.paper_ref}: {artifact.title}", "",
             f"Scale `{scale}`" + (f" ({sc.note})" if sc.note else "")
             + f"; {sc.seeds} seed(s) planned." + (f" {extra}" if extra else ""), ""]
    if artifact.protocol:
        text = scale.endswith("-text")
        lines += [("Where the paper's text is silent or differs from the authors' code "
                   "(dannyneil/public_plstm at 3abf8de), this scale follows "
                   + ("**the paper's text** (the authors' choices below are replaced by the "
                      "text's reading)" if text else "**the authors' code**") + ":")]
        lines += [f"- {c.cited()}" for c in artifact.protocol] + [""]
    if artifact.deviations:
        lines += ["Where this code still differs from the paper or the authors' code:"]
        lines += [f"- {d}" for d in artifact.deviations] + [""]
    return lines


def _md_paper(ref: PaperReference) -> list[str]:
    lines = [("Reference values (the paper's or the seed's, as named) are quoted from their source "
             "as targets to compare with; they are never outputs of this code. "
             f"Source: {ref.source}. They measure: {ref.quantity}.")]
    if ref.note:
        lines += ["", f"Note: {ref.note}"]
    if ref.statements:
        lines += ["", "What the source says:"] + [f"- {s}" for s in ref.statements]
    return lines + [""]


def _color(label: str, i: int) -> str:
    return COLORS.get(label, f"C{i}")


MARKERS_UP_TO = 20  # a curve of this many points or fewer shows them (one epoch: a dot)


def _markers(n: int) -> dict:
    """Line style of a curve of ``n`` points: a line alone draws nothing for one point."""
    return {"marker": "o", "ms": 4 if n > 1 else 6} if n <= MARKERS_UP_TO else {}


# --------------------------------------------------------------------------- figures

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
    return _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)


def _curve_panel(ax, curves: pd.DataFrame, artifact: Artifact, condition: str, shade: bool,
                 colors: dict[str, str], log: bool = False) -> None:
    for i, var in enumerate(artifact.variants):
        c = curves[(curves["variant"] == var.label) & (curves["condition"] == condition)]
        if c.empty:
            continue
        n = int(c["n_seeds"].max())
        color = colors.get(var.label, _color(var.label, i))
        ax.plot(c["step"], c["mean"], color=color, lw=1.6, label=f"{var.label} (n={n})",
                **_markers(len(c)))
        if shade and n > 1:
            ax.fill_between(c["step"], c["min"], c["max"], color=color, alpha=0.25, lw=0)
    if log:
        ax.set_yscale("log")
    _whole_numbers(ax, curves[curves["condition"] == condition]["step"])
    ax.grid(alpha=0.3)


def _whole_numbers(ax, xs) -> None:
    """Epochs and steps are whole: integer ticks, and a single one where there is one point
    (not ticks at 0.96, 0.98, ... around it)."""
    from matplotlib.ticker import MaxNLocator

    xs = sorted({int(x) for x in xs})
    if len(xs) == 1:
        ax.set_xticks(xs)
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
TABLE1_ROWS = (
    ("Accuracy at epoch 1", "test_acc", 1, "epoch 1"),
    ("Train/test rho = 0.75", "test_acc", None, "rho 0.75"),
    ("Test with rho = 0.4", "rho_0.4/test_acc", None, "test rho 0.4"),
    ("Test with rho = 1.0", "rho_1.0/test_acc", None, "test rho 1.0"),
    ("LSTM updates (per neuron)", "updates_per_neuron", None, "LSTM updates"),
)


def _table1_cells(artifact: Artifact, history: pd.DataFrame, scale: str) -> pd.DataFrame:
    """One row per (Table 1 row, model): mean, std, seeds of our tracked values."""
    need = tuple(dict.fromkeys(m for _, m, _, _ in TABLE1_ROWS if m != "updates_per_neuron"))
    h = _select(artifact, history, scale, need)
    runs = set(h["run_id"])
    upd = history[history["run_id"].isin(runs) & (history["metric"] == "updates_per_neuron")]
    h = pd.concat([h, upd.drop_duplicates(["run_id", "metric", "step"], keep="last")])
    rows = []
    for label, metric, step, _ in TABLE1_ROWS:
        m = h[h["metric"] == metric]
        vals = m[m["step"] == step] if step is not None else _final(h, metric)
        for var in artifact.variants:
            sub = vals[vals["variant"] == var.label]
            if sub.empty:
                rows.append({"row": label, "variant": var.label, "metric": metric, "n_seeds": 0})
                continue
            rows.append({"row": label, "variant": var.label, "metric": metric,
                         "epoch": int(sub["step"].max()), **_spread(sub["value"]),
                         "seeds": " ".join(str(s) for s in sorted(sub["seed"]))})
    return pd.DataFrame(rows)


def plot_table1(artifact: Artifact, history: pd.DataFrame, out_dir: Path,
                scale: str) -> list[Path]:
    """Table 1 in the paper's layout (rows: accuracy at epoch 1, at rho 0.75 / 0.4 / 1.0,
    updates per neuron; columns: the models), every cell mean ± std over seeds with the paper's
    value beside it, as markdown, CSV and LaTeX; and a figure of accuracy against rho per model,
    ours against the paper's. A synthetic stand-in gets no paper column."""
    table = _table1_cells(artifact, history, scale)
    ref = None if artifact.synthetic else paper_values(artifact.id)
    models = [v.label for v in artifact.variants]

    def cell(label: str, model: str, digits: int) -> tuple[str, str]:
        r = table[(table["row"] == label) & (table["variant"] == model)].iloc[0]
        ours = "-" if r["n_seeds"] == 0 else _fmt(r["mean"], r["std"], r["n_seeds"], digits)
        key = next(k for lab, _, _, k in TABLE1_ROWS if lab == label)
        pv = ref.get(model, key) if ref else None
        return ours, (pv.format(digits) if pv else "-")

    n_seeds = int(table["n_seeds"].max())
    tag = " (SYNTHETIC data, not N-MNIST)" if artifact.synthetic else ""
    lines = _md_header(artifact, scale, f"Mean ± std (ddof=0) over {n_seeds} seed(s) "
                                        f"({_seeds_text(artifact, scale, n_seeds)}){tag}.")
    head = " | ".join(f"{m} (ours) | {m} (paper)" if ref else f"{m} (ours)" for m in models)
    lines += [f"| |{' ' + head} |", "|---|" + "---|" * (len(models) * (2 if ref else 1))]
    tex = [r"\begin{tabular}{l" + "r" * len(models) * (2 if ref else 1) + "}", r"\hline",
           " & ".join([""] + [f"{m} (ours) & {m} (paper)" if ref else f"{m} (ours)"
                              for m in models]) + r" \\", r"\hline"]
    for label, metric, _, _ in TABLE1_ROWS:
        digits = 1 if metric == "updates_per_neuron" else 2
        cells = [cell(label, m, digits) for m in models]
        flat = [c for pair in cells for c in (pair if ref else pair[:1])]
        lines.append(f"| {label} | " + " | ".join(flat) + " |")
        tex.append(" & ".join([label.replace("rho", r"$\rho$")]
                              + [c.replace("±", r"$\pm$") for c in flat]) + r" \\")
    tex += [r"\hline", r"\end{tabular}", ""]
    lines += ["", "Notes (how the paper was read):"] + [f"- {n}" for n in artifact.notes]
    lines += [""] + (_md_paper(ref) if ref else [
        "No reference values: this is a synthetic stand-in, not a paper experiment."])

    fig = _new_figure(10.0, 4.2)
    ax, ax2 = fig.subplots(1, 2, width_ratios=(2, 1))
    rhos = ((0.4, "Test with rho = 0.4", "test rho 0.4"),
            (0.75, "Train/test rho = 0.75", "rho 0.75"),
            (1.0, "Test with rho = 1.0", "test rho 1.0"))
    for i, m in enumerate(models):
        color = _color(m, i)
        pts = [table[(table["row"] == lab) & (table["variant"] == m)].iloc[0] for _, lab, _ in rhos]
        ok = [p["n_seeds"] > 0 for p in pts]
        xs = [r for (r, _, _), o in zip(rhos, ok) if o]
        ys = [p["mean"] for p, o in zip(pts, ok) if o]
        es = [p["std"] if p["n_seeds"] > 1 else 0 for p, o in zip(pts, ok) if o]
        ax.errorbar(xs, ys, yerr=es, color=color, marker="o", lw=1.6, capsize=3,
                    label=f"{m} (ours{', synthetic' if artifact.synthetic else ''})")
        if ref:
            pv = [ref.get(m, k) for _, _, k in rhos]
            ax.errorbar([r for r, _, _ in rhos], [v.mean for v in pv], yerr=[v.std for v in pv],
                        color=color, marker="s", mfc="white", ls="--", lw=1.0, capsize=3,
                        label=f"{m} (paper)")
    ax.axvline(0.75, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("rho at test time (probability an event is kept); trained at 0.75")
    ax.set_ylabel("Test accuracy [%]")
    ax.set_xticks([0.4, 0.75, 1.0])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    upd_models = [m for m in models
                  if table[(table["row"] == TABLE1_ROWS[-1][0]) & (table["variant"] == m)]
                  ["n_seeds"].iloc[0] > 0]
    for j, m in enumerate(upd_models):
        r = table[(table["row"] == TABLE1_ROWS[-1][0]) & (table["variant"] == m)].iloc[0]
        ax2.bar(j - 0.2, r["mean"], 0.4, color=_color(m, models.index(m)), edgecolor="black",
                label="ours" if j == 0 else None)
        pv = ref.get(m, "LSTM updates") if ref else None
        if pv is not None:
            ax2.bar(j + 0.2, pv.mean, 0.4, color="white", edgecolor=_color(m, models.index(m)),
                    hatch="///", label="paper" if j == 0 else None)
    ax2.set_xticks(range(len(upd_models)), upd_models)
    ax2.set_yscale("log")
    ax2.set_ylabel("Updates per neuron per recording")
    ax2.legend(fontsize=7)
    fig.suptitle(f"{artifact.paper_ref if not artifact.synthetic else 'SYNTHETIC event digits'}"
                 f", scale {scale}", fontsize=9)
    paths = _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)
    paths.append(_write_text(Path(out_dir) / f"{artifact.id}.tex", "\n".join(tex)))
    return paths


MODALITY_METRICS = (("both", "test_acc"), ("audio", "audio/test_acc"),
                    ("video", "video/test_acc"))


def fig6c_rows(artifact: Artifact, history: pd.DataFrame, scale: str) -> pd.DataFrame:
    """The rows Fig. 6c is drawn from (and Fig. 6a picks its run from)."""
    return _select(artifact, history, scale, (artifact.metric, *[m for _, m in MODALITY_METRICS]))


def plot_fig6c(artifact: Artifact, history: pd.DataFrame, out_dir: Path,
               scale: str) -> list[Path]:
    """Video-only test loss over epochs per model, a panel per resolution (low: MFCC every
    40 ms, high: every 10 ms), and a table of final word accuracies per modality (both, audio,
    video) and the peak video-only accuracy, beside the paper's statements (Fig. 6a, drawn from
    a trained model, is :func:`plstm_repro.illustrations.plot_fig6a`)."""
    metric = artifact.metric
    h = fig6c_rows(artifact, history, scale)
    ref = None if artifact.synthetic else paper_values(artifact.id)
    curves = _curves(h, metric, artifact)
    fig = _new_figure(10.0, 4.0)
    axes = fig.subplots(1, len(artifact.conditions), sharey=True, squeeze=False)[0]
    for ax, cond in zip(axes, artifact.conditions):
        _curve_panel(ax, curves, artifact, cond.label, shade=True, colors=COLORS)
        ax.set_title({"low": "Low resolution (MFCC every 40 ms)",
                      "high": "High resolution (MFCC every 10 ms)"}.get(cond.label, cond.label),
                     fontsize=9)
        ax.set_xlabel("Epoch")
    axes[0].set_ylabel("Test loss, video only")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{artifact.paper_ref if not artifact.synthetic else 'SYNTHETIC words'}, "
                 f"scale {scale}", fontsize=9)
    rows = []
    for cond in artifact.conditions:
        for var in artifact.variants:
            sub = h[(h["variant"] == var.label) & (h["condition"] == cond.label)]
            row = {"variant": var.label, "condition": cond.label}
            for mod, m in MODALITY_METRICS:
                fin = _final(sub, m)
                row.update({f"{mod}_mean": fin["value"].mean(), f"{mod}_std": fin["value"].std(ddof=0)})
            peak = sub[sub["metric"] == "video/test_acc"].groupby("run_id")["value"].max()
            row.update({"video_peak": peak.mean(), "n_seeds": len(peak),
                        "epochs": int(sub[sub["metric"] == metric]["step"].max())})
            rows.append(row)
    table = pd.DataFrame(rows)
    tag = " SYNTHETIC data, not GRID." if artifact.synthetic else ""
    lines = _md_header(artifact, scale, "Word accuracy (%) at the last epoch per test-time "
                                        f"modality, mean ± std over seeds.{tag}")
    lines += [("| model | resolution | epochs | both | audio only | video only | video only, peak "
              "over epochs | seeds |"), "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        cells = [_fmt(getattr(r, f"{m}_mean"), getattr(r, f"{m}_std"), r.n_seeds)
                 for m, _ in MODALITY_METRICS]
        lines.append(f"| {r.variant} | {r.condition} | {r.epochs} | " + " | ".join(cells)
                     + f" | {r.video_peak:.2f} | {_seeds_text(artifact, scale, r.n_seeds)} |")
    if ref:
        lines += ["", ("The paper's statements to compare with: all networks above 98% word "
                  "accuracy on audio only and on both; video only is the hard case, peak "
                  f"{ref.get('Phased LSTM', 'video only').format()}% (sec. 3.4, Fig. 6c).")]
    lines += ["", "Notes (how the paper was read):"] + [f"- {n}" for n in artifact.notes]
    lines += [""] + (_md_paper(ref) if ref else [
        "No reference values: this is a synthetic stand-in, not a paper experiment."])
    return _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)


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
    return _save_figure(fig, Path(out_dir), "curves")[0]
