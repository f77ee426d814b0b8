"""What every figure of :mod:`plstm_repro.results.plots` shares: the rows of the runs that count, one per
(variant, condition, seed), reduced to finals and curves; colours and markers; the markdown
header and the paper's values; files written whole (temp name, then rename)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IncompleteGrid, UsageError
from ..experiments import Artifact
from ..layout import atomic_write, atomic_write_text
from ..reference import PaperReference

COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]
# the authors' notebook colours (A_Freq_Task.ipynb), so our figures read like theirs
COLORS = {"Phased LSTM": "#33a02c", "BN-LSTM": "#6a3d9a", "LSTM": "#1f78b4"}
CONDITION_NAMES = {"standard": "Standard sampling", "highres": "High resolution sampling",
                   "async": "Async. sampling"}


# --------------------------------------------------------------------------- data helpers

def reproduce_hint(artifact: Artifact, scale: str) -> str:
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
                         f"{reproduce_hint(artifact, scale)}")
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
                         f"{reproduce_hint(artifact, scale)}")
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

def _write_text(path: Path, text: str) -> Path:
    return atomic_write_text(path, text)


def _write_csv(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


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
        out.append(atomic_write(path, lambda tmp, e=ext, m=meta: fig.savefig(
            tmp, format=e, dpi=150, metadata=m)))
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
        lines += [("Where the paper's text is silent or differs from "
                   f"{artifact.protocol_from}, this scale follows "
                   + ("**the paper's text** (the choices below are replaced by the "
                      "text's reading)" if text else f"**{artifact.protocol_from}**") + ":")]
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
