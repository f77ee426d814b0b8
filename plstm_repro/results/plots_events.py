"""The event-based tasks' figures: Table 1 (N-MNIST) and Fig. 6c (GRID lip reading)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..experiments import Artifact
from ..reference import paper_values
from .plot_kit import (
    COLORS,
    _color,
    _curve_panel,
    _curves,
    _final,
    _fmt,
    _md_header,
    _md_paper,
    _new_figure,
    _seeds_text,
    _select,
    _spread,
    _write_all,
    _write_text,
)

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

    fig = _table1_figure(artifact, table, ref, models, scale)
    paths = _write_all(fig, table, "\n".join(lines), out_dir, artifact.id)
    paths.append(_write_text(Path(out_dir) / f"{artifact.id}.tex", "\n".join(tex)))
    return paths


def _table1_figure(artifact: Artifact, table: pd.DataFrame, ref, models: list[str],
                   scale: str):
    """Accuracy against rho per model (ours and the paper's) beside the updates per neuron."""
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
    return fig


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
    a trained model, is :func:`plstm_repro.results.illustrations.plot_fig6a`)."""
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
