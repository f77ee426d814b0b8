"""``plstm report``: the whole reproduction on one page, from tracked runs only.

For every artifact of :mod:`plstm_repro.experiments`: the largest scale whose grid is complete
(every grid point of the current declaration finished; else the best covered one, marked
incomplete), its figure, our table beside the paper's, the paper's claims with their verdicts
(:mod:`plstm_repro.claims`, declared in :mod:`plstm_repro.reference`), the deviations from the
paper the artifact declares, and the runs behind it (ids, commit, time, hardware). What has not
been run is said plainly, with the command that runs it.

Writes ``report.html`` (self-contained: images embedded, no script, no network) and its twin
``report.md`` (figures beside it in ``figures/``), each through a temporary name and a rename.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import results
from ..claims import Verdict
from ..errors import IncompleteGrid
from ..experiments import ARTIFACTS, Artifact
from ..layout import Layout, atomic_write_text
from ..reference import PaperReference, paper_values
from ..tracking import MlflowTracker, git_commit, hardware
from .report_render import BEST_FIRST, Section, md_to_html, plot_table  # noqa: F401
from .report_writers import render


@dataclass
class ArtifactResults:
    """One artifact at one scale: the runs that count, their history, our summary beside the
    paper's, and the claims' verdicts."""

    artifact: Artifact
    ref: PaperReference
    coverage: dict[str, tuple[int, int]]  # scale -> (grid points finished, planned)
    scale: str | None = None
    runs: list = field(default_factory=list)
    history: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        if self.scale is None:
            return False
        done, planned = self.coverage[self.scale]
        return done == planned

    def claims_table(self) -> pd.DataFrame:
        rows = [{"claim": v.claim.id, "statement": v.claim.statement, "verdict": v.verdict,
                 "checks": " ; ".join(v.checks), "missing": " ; ".join(v.missing),
                 "seeds": " ".join(map(str, v.seeds)), "measured_as": v.claim.measured_as,
                 "source": v.claim.source} for v in self.verdicts]
        return pd.DataFrame(rows)


def select_runs(tracker: MlflowTracker, art: Artifact, scale: str,
                all_runs: list | None = None) -> tuple[list, int]:
    """The runs that count for ``art`` at ``scale`` (see :func:`plstm_repro.results.counted`)
    and the grid size."""
    runs = all_runs if all_runs is not None else tracker.runs(art.id)
    return results.counted(runs, art, scale)


def artifact_results(tracker: MlflowTracker, art: Artifact,
                     scale: str | None = None) -> ArtifactResults:
    """Results of ``art`` at ``scale``, or at the largest complete scale (else the best
    covered one)."""
    ref = paper_values(art.id)
    chosen = results.coverage(tracker.runs(art.id), art)
    res = ArtifactResults(art, ref, {sc: (len(r), n) for sc, (r, n) in chosen.items()})
    if scale is None:
        scale = (results.preferred_scales(chosen) or [None])[0]
    if scale is None:  # the claims are still listed, each with "not enough runs"
        empty = pd.DataFrame(columns=["run_id", "variant", "condition", "seed", "metric",
                                      "step", "value"])
        res.verdicts = [c.evaluate(empty) for c in ref.claims]
        return res
    res.scale = scale
    res.runs = chosen[scale][0]
    res.history = tracker.history(res.runs)
    res.summary = summary_table(art, ref, res.history, res.runs)
    res.verdicts = [c.evaluate(res.history) for c in ref.claims]
    return res


def summary_table(art: Artifact, ref: PaperReference, history: pd.DataFrame,
                  runs: list) -> pd.DataFrame:
    """Per (variant, condition): the artifact's metric at each run's last step, over seeds
    (mean, std with ddof=0, min, max), and the paper's value beside it."""
    metric = art.metric
    m = history[history["metric"] == metric].sort_values("step", kind="stable")
    last = m.groupby("run_id", sort=False).tail(1)
    ids = {r.info.run_id for r in runs}
    rows = []
    for cond in art.conditions:
        for var in art.variants:
            sub = last[(last["variant"] == var.label) & (last["condition"] == cond.label)
                       & last["run_id"].isin(ids)]
            v = sub["value"].to_numpy(dtype=float)
            pv = ref.get(var.label, cond.label)
            rows.append({"variant": var.label, "condition": cond.label, "metric": metric,
                         "n_seeds": len(v), "seeds": " ".join(map(str, sorted(sub["seed"]))),
                         "last_step": int(sub["step"].max()) if len(v) else None,
                         "mean": float(np.mean(v)) if len(v) else None,
                         "std": float(np.std(v)) if len(v) else None,
                         "min": float(np.min(v)) if len(v) else None,
                         "max": float(np.max(v)) if len(v) else None,
                         "paper": pv.format() if pv else "",
                         "runs": " ".join(sorted(r[:8] for r in sub["run_id"]))})
    return pd.DataFrame(rows)


def draw(art: Artifact, res: ArtifactResults | None, root: Path) -> list[Path]:
    """The artifact's figure from exactly the runs of ``res`` (files in runs/figures/...)."""
    from .figures import draw as draw_figure

    if not art.variants:
        return draw_figure(art, None, root, "quick")
    return draw_figure(art, res.history, root, res.scale)


def _write(path: Path, text: str) -> Path:
    return atomic_write_text(path, text)


def write_report(root: Path = Path("runs"), out_dir: Path | None = None,
                 tracker: MlflowTracker | None = None,
                 artifacts: list[Artifact] | None = None) -> tuple[Path, Path]:
    """Build ``report.html`` and ``report.md`` in ``out_dir`` (default ``runs/report``)."""
    root = Path(root)
    out_dir = Path(out_dir) if out_dir else Layout(root).report()
    tracker = tracker or MlflowTracker(root=root)
    sections = []
    for art in artifacts or list(ARTIFACTS.values()):
        sec = Section(art, None)
        if art.variants:
            sec.res = artifact_results(tracker, art)
        if not art.variants or (sec.res is not None and sec.res.scale):
            try:
                paths = draw(art, sec.res, root)
                sec.png = next((p for p in paths if p.suffix == ".png"), None)
                md = next((p for p in paths if p.suffix == ".md"), None)
                sec.table_md = plot_table(md) if md and art.variants else ""
            except IncompleteGrid as e:  # an incomplete grid the figure cannot be drawn from
                sec.problem = f"No figure: {e}"
        sections.append(sec)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"title": "Phased LSTM (Neil, Pfeiffer, Liu, NIPS 2016): reproduction report",
            "lines": [("generated", now), ("code commit", git_commit()),
                      ("tracking store", tracker.uri), ("this machine", hardware())]}
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = out_dir / "figures"
    figs.mkdir(exist_ok=True)
    images = {}
    for s in sections:
        if s.png is not None:
            scale = s.res.scale if s.res is not None else "quick"
            name = f"{s.art.id}_{scale}.png"
            shutil.copyfile(s.png, figs / name)
            images[s.art.id] = f"figures/{name}"
    page, md = render(sections, meta, images)
    html_path = _write(out_dir / "report.html", page)
    md_path = _write(out_dir / "report.md", md)
    return html_path, md_path
