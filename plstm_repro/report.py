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

import base64
import datetime as _dt
import html
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import results
from .claims import FAILS, HOLDS, NOT_ENOUGH, Verdict
from .errors import IncompleteGrid
from .experiments import ARTIFACTS, SCALES, Artifact
from .layout import atomic_write_text
from .reference import PaperReference, paper_values
from .tracking import MlflowTracker, git_commit, hardware

BEST_FIRST = tuple(reversed(SCALES))  # paper, quick, smoke


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
    all_runs = tracker.runs(art.id)
    chosen = {sc: select_runs(tracker, art, sc, all_runs) for sc in SCALES}
    coverage = {sc: (len(r), n) for sc, (r, n) in chosen.items()}
    res = ArtifactResults(art, ref, coverage)
    if scale is None:
        complete = [sc for sc in BEST_FIRST if coverage[sc][1] and
                    coverage[sc][0] == coverage[sc][1]]
        partial = sorted((sc for sc in BEST_FIRST if coverage[sc][0]),
                         key=lambda sc: -coverage[sc][0] / coverage[sc][1])
        scale = (complete or partial or [None])[0]
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


# --- rendering -------------------------------------------------------------------------------

@dataclass
class Section:
    art: Artifact
    res: ArtifactResults | None
    png: Path | None = None
    table_md: str = ""  # the plot's own table of ours beside the paper's
    problem: str = ""


def _plot_table(md_path: Path) -> str:
    """The plot's markdown without its title line (the section has its own)."""
    if not md_path.is_file():
        return ""
    lines = md_path.read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()


def _wall(run) -> float | None:
    if run.info.end_time and run.info.start_time:
        return (run.info.end_time - run.info.start_time) / 1000.0
    return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _run_rows(res: ArtifactResults) -> list[list[str]]:
    rows = []
    key = {(v.label, c.label): (i, j) for i, v in enumerate(res.artifact.variants)
           for j, c in enumerate(res.artifact.conditions)}
    for r in sorted(res.runs, key=lambda r: (key.get((r.data.tags.get("variant"),
                                                      r.data.tags.get("condition")), (99, 99)),
                                             int(r.data.tags.get("seed", 0)))):
        t = r.data.tags
        rows.append([t.get("variant", ""), t.get("condition", ""), t.get("seed", ""),
                     r.info.run_id, r.info.status, _duration(_wall(r)),
                     t.get("git_commit", "unknown")[:8], t.get("plstm.hardware", "-")])
    return rows


RUN_HEADER = ["variant", "condition", "seed", "run id", "status", "wall time", "commit",
              "hardware"]


def _coverage_text(res: ArtifactResults) -> str:
    return "; ".join(f"{sc}: {d} of {n} grid points finished" for sc, (d, n)
                     in ((sc, res.coverage[sc]) for sc in BEST_FIRST))


def _status(sec: Section) -> str:
    art, res = sec.art, sec.res
    if not art.variants:
        return "illustration drawn from a model (no training runs)"
    if res is None or res.scale is None:
        return "not run at any scale"
    done, n = res.coverage[res.scale]
    return f"scale {res.scale}, complete ({n} runs)" if done == n else \
        f"scale {res.scale}, INCOMPLETE ({done} of {n} runs)"


def _claim_counts(res: ArtifactResults | None) -> str:
    if res is None or not res.verdicts:
        return "-"
    c = {k: sum(v.verdict == k for v in res.verdicts) for k in (HOLDS, FAILS, NOT_ENOUGH)}
    return f"{c[HOLDS]} hold, {c[FAILS]} do not, {c[NOT_ENOUGH]} not enough runs"


def md_to_html(text: str) -> str:
    """The markdown the plots write (paragraphs, ``-`` lists, pipe tables, ``code``, *em*)."""
    out, para, items, table = [], [], [], []

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", s)

    def flush():
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table
                    if not re.fullmatch(r"\|?[\s|:-]+\|?", r.strip())]
            head, body = rows[0], rows[1:]
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head)
                       + "</tr></thead><tbody>" + "".join(
                           "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                           for r in body) + "</tbody></table>")
            table.clear()

    for line in text.splitlines():
        s = line.strip()
        if not s:
            flush()
        elif s.startswith("|"):
            if para or items:
                flush()
            table.append(s)
        elif s.startswith("- "):
            if para or table:
                flush()
            items.append(s[2:])
        elif s.startswith("#"):
            flush()
            level = min(6, len(s) - len(s.lstrip("#")) + 2)
            out.append(f"<h{level}>{inline(s.lstrip('#').strip())}</h{level}>")
        else:
            if table or items:
                flush()
            para.append(s)
    flush()
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:2.2em;border-bottom:2px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2em;font-size:.92em}
img{max-width:100%;border:1px solid #eee}.meta{color:#555;font-size:.92em}
.v{display:inline-block;padding:.05em .5em;border-radius:.7em;color:#fff;font-weight:600;
font-size:.85em}.holds{background:#2e7d32}.fails{background:#c62828}.none{background:#757575}
.claim{margin:.8em 0;padding:.5em .8em;border-left:4px solid #ddd;background:#fafafa}
.checks{font-family:ui-monospace,monospace;font-size:.85em;white-space:pre-wrap}
.notrun{background:#fff3e0;padding:.5em .8em;border-left:4px solid #ef6c00}
"""

BADGE = {HOLDS: "holds", FAILS: "fails", NOT_ENOUGH: "none"}


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>"
                                                                for c in r) + "</tr>"
                                               for r in rows) + "</tbody></table>")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(c) -> str:
        return str(c).replace("|", "\\|")
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows])


def _declared(art: Artifact) -> list[tuple[str, tuple[str, ...]]]:
    """What the artifact declares about its fidelity: deviations, and readings of the paper."""
    out = []
    if art.deviations:
        out.append(("Deviations from the paper declared by this artifact:", art.deviations))
    notes = getattr(art, "notes", ())
    if notes:
        out.append(("How the paper was read where it is silent or ambiguous:", notes))
    if art.protocol:  # the paper-text scale runs the text's reading of these instead
        out.append((("Where the text is silent or differs from the authors' code, the quick and "
                     "paper scales follow their code (the paper-text scale, the text):"),
                    tuple(c.cited() for c in art.protocol)))
    return out


def _numbers_rows(v: Verdict) -> list[list[str]]:
    return [[label, f"{value:.4g}", " ".join(map(str, seeds))]
            for label, (value, seeds) in v.numbers.items()]


def _reproduce_hint(art: Artifact, res: ArtifactResults | None) -> str:
    scale = "quick"
    if res is not None and res.scale and not res.complete:
        scale = res.scale
    return f"plstm reproduce {art.id} --scale {scale}"


def render_html(sections: list[Section], meta: dict) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{esc(meta['title'])}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(meta['title'])}</h1>",
             "<p class='meta'>" + "<br>".join(esc(f"{k}: {v}") for k, v in meta["lines"])
             + "</p>",
             ("<p>Paper numbers are targets quoted from their sources, never outputs of this "
              "code. A claim <em>holds</em> or <em>does not hold</em> on the numbers shown "
              "beside it; <em>not enough runs</em> means a number it needs is missing.</p>"),
             "<h2 id='overview'>Overview</h2>",
             _html_table(["artifact", "paper", "shown", "claims"],
                         [[s.art.id, s.art.paper_ref, _status(s), _claim_counts(s.res)]
                          for s in sections])]
    for s in sections:
        art, res = s.art, s.res
        parts.append(f"<h2 id='{esc(art.id)}'>{esc(art.paper_ref)}: {esc(art.title)}</h2>")
        parts.append(f"<p class='meta'>artifact <code>{esc(art.id)}</code> · {esc(_status(s))}"
                     + (f" · {esc(_coverage_text(res))}" if res else "") + "</p>")
        if art.variants and (res is None or res.scale is None):
            parts.append(f"<p class='notrun'>Not run yet. Run <code>"
                         f"{esc(_reproduce_hint(art, res))}</code>, then <code>plstm report"
                         "</code> again.</p>")
        elif res is not None and not res.complete:
            parts.append(f"<p class='notrun'>Incomplete: the figure and the claims use the "
                         f"{res.coverage[res.scale][0]} finished of "
                         f"{res.coverage[res.scale][1]} grid points. <code>"
                         f"{esc(_reproduce_hint(art, res))}</code> runs the rest.</p>")
        if res is not None and res.scale and not s.table_md:
            sc = art.scales[res.scale]
            parts.append(f"<p>Scale <code>{esc(res.scale)}</code>: {esc(sc.note or '-')}; "
                         f"{sc.seeds} seed(s) planned.</p>")
        if getattr(art, "synthetic", False):
            parts.append("<p class='notrun'>SYNTHETIC stand-in dataset: these results are never "
                         "compared with the paper's.</p>")
        for head, items in _declared(art):
            parts.append(f"<p><strong>{esc(head)}</strong></p><ul>"
                         + "".join(f"<li>{esc(d)}</li>" for d in items) + "</ul>")
        if s.png is not None:
            data = base64.b64encode(s.png.read_bytes()).decode()
            parts.append(f"<p><img alt='{esc(art.paper_ref)} figure' "
                         f"src='data:image/png;base64,{data}'></p>")
        if s.problem:
            parts.append(f"<p class='notrun'>{esc(s.problem)}</p>")
        if s.table_md:
            parts.append("<h3>Ours beside the paper's</h3>" + md_to_html(s.table_md))
        if res is not None and res.verdicts:
            parts.append("<h3>The paper's claims</h3>")
            for v in res.verdicts:
                c = v.claim
                parts.append(
                    f"<div class='claim'><span class='v {BADGE[v.verdict]}'>{esc(v.verdict)}"
                    f"</span> <strong>{esc(c.statement)}</strong> <span class='meta'>"
                    f"({esc(c.source)}; <code>{esc(c.id)}</code>)</span><br>"
                    f"<span class='meta'>Measured as: {esc(c.measured_as)}</span>"
                    + (f"<div class='checks'>{esc(chr(10).join(v.checks))}</div>"
                       if v.checks else "")
                    + (f"<div class='checks'>missing: {esc('; '.join(v.missing))}</div>"
                       if v.missing else "")
                    + (_html_table(["number", "value", "seeds"], _numbers_rows(v))
                       if v.numbers else "") + "</div>")
        elif not s.table_md and paper_values(art.id).statements:
            parts.append("<p class='meta'>No claim of this artifact is declared as a "
                         "predicate; the source's words:</p><ul>" + "".join(
                             f"<li>{esc(t)}</li>" for t in paper_values(art.id).statements)
                         + "</ul>")
        if res is not None and res.runs:
            parts.append("<h3>Runs</h3>" + _html_table(RUN_HEADER, _run_rows(res)))
            parts.append(f"<p class='meta'>Total wall time of these runs: "
                         f"{esc(_duration(sum(_wall(r) or 0 for r in res.runs)))}.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_md(sections: list[Section], meta: dict, images: dict[str, str]) -> str:
    out = [f"# {meta['title']}", ""] + [f"- {k}: {v}" for k, v in meta["lines"]] + [
        "", "Paper numbers are targets quoted from their sources, never outputs of this code.",
        "", "## Overview", "",
        _md_table(["artifact", "paper", "shown", "claims"],
                  [[s.art.id, s.art.paper_ref, _status(s), _claim_counts(s.res)]
                   for s in sections])]
    for s in sections:
        art, res = s.art, s.res
        out += ["", f"## {art.paper_ref}: {art.title}", "",
                f"artifact `{art.id}` · {_status(s)}" + (f" · {_coverage_text(res)}"
                                                         if res else ""), ""]
        if art.variants and (res is None or res.scale is None):
            out += [(f"**Not run yet.** Run `{_reproduce_hint(art, res)}`, then "
                     "`plstm report` again."), ""]
        elif res is not None and not res.complete:
            out += [(f"**Incomplete**: {res.coverage[res.scale][0]} of "
                     f"{res.coverage[res.scale][1]} grid points finished; "
                     f"`{_reproduce_hint(art, res)}` runs the rest."), ""]
        if res is not None and res.scale and not s.table_md:
            sc = art.scales[res.scale]
            out += [f"Scale `{res.scale}`: {sc.note or '-'}; {sc.seeds} seed(s) planned.", ""]
        if getattr(art, "synthetic", False):
            out += [("**SYNTHETIC stand-in dataset**: these results are never compared with "
                     "the paper's."), ""]
        for head, items in _declared(art):
            out += [head, ""] + [f"- {d}" for d in items] + [""]
        if art.id in images:
            out += [f"![{art.paper_ref}]({images[art.id]})", ""]
        if s.problem:
            out += [s.problem, ""]
        if s.table_md:
            out += ["### Ours beside the paper's", "", s.table_md, ""]
        if res is not None and res.verdicts:
            out += ["### The paper's claims", ""]
            for v in res.verdicts:
                c = v.claim
                out += [f"- **{v.verdict}**: {c.statement} ({c.source}; `{c.id}`)",
                        f"  - measured as: {c.measured_as}"]
                out += [f"  - `{line}`" for line in v.checks]
                if v.missing:
                    out.append(f"  - missing: {'; '.join(v.missing)}")
                if v.numbers:
                    out.append("  - seeds: " + "; ".join(
                        f"{label}: {' '.join(map(str, seeds))}"
                        for label, (_, seeds) in v.numbers.items()))
            out.append("")
        if res is not None and res.runs:
            out += ["### Runs", "", _md_table(RUN_HEADER, _run_rows(res)), "",
                    (f"Total wall time of these runs: "
                     f"{_duration(sum(_wall(r) or 0 for r in res.runs))}."), ""]
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> Path:
    return atomic_write_text(path, text)


def write_report(root: Path = Path("runs"), out_dir: Path | None = None,
                 tracker: MlflowTracker | None = None,
                 artifacts: list[Artifact] | None = None) -> tuple[Path, Path]:
    """Build ``report.html`` and ``report.md`` in ``out_dir`` (default ``runs/report``)."""
    root = Path(root)
    out_dir = Path(out_dir) if out_dir else root / "report"
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
                sec.table_md = _plot_table(md) if md and art.variants else ""
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
    html_path = _write(out_dir / "report.html", render_html(sections, meta))
    md_path = _write(out_dir / "report.md", render_md(sections, meta, images))
    return html_path, md_path
