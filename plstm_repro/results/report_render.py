"""Rendering of the reproduction report: one walk over the sections feeds both the HTML and
the markdown writer (each says an element its own way; what is shown, and in which order, is
decided once)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..claims import FAILS, HOLDS, NOT_ENOUGH, Verdict
from ..experiments import SCALES, Artifact

BEST_FIRST = tuple(reversed(SCALES))  # paper, quick, smoke


@dataclass
class Section:
    art: Artifact
    res: object | None  # report.ArtifactResults
    png: Path | None = None
    table_md: str = ""  # the plot's own table of ours beside the paper's
    problem: str = ""


def plot_table(md_path: Path) -> str:
    """The plot's markdown without its title line (the section has its own)."""
    if not md_path.is_file():
        return ""
    lines = md_path.read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()


def wall_seconds(run) -> float | None:
    if run.info.end_time and run.info.start_time:
        return (run.info.end_time - run.info.start_time) / 1000.0
    return None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def run_rows(res) -> list[list[str]]:
    rows = []
    key = {(v.label, c.label): (i, j) for i, v in enumerate(res.artifact.variants)
           for j, c in enumerate(res.artifact.conditions)}
    for r in sorted(res.runs, key=lambda r: (key.get((r.data.tags.get("variant"),
                                                      r.data.tags.get("condition")), (99, 99)),
                                             int(r.data.tags.get("seed", 0)))):
        t = r.data.tags
        rows.append([t.get("variant", ""), t.get("condition", ""), t.get("seed", ""),
                     r.info.run_id, r.info.status, duration(wall_seconds(r)),
                     t.get("git_commit", "unknown")[:8], t.get("plstm.hardware", "-")])
    return rows


RUN_HEADER = ["variant", "condition", "seed", "run id", "status", "wall time", "commit",
              "hardware"]


def coverage_text(res) -> str:
    return "; ".join(f"{sc}: {d} of {n} grid points finished" for sc, (d, n)
                     in ((sc, res.coverage[sc]) for sc in BEST_FIRST))


def section_status(sec: Section) -> str:
    art, res = sec.art, sec.res
    if not art.variants:
        return "illustration drawn from a model (no training runs)"
    if res is None or res.scale is None:
        return "not run at any scale"
    done, n = res.coverage[res.scale]
    return f"scale {res.scale}, complete ({n} runs)" if done == n else \
        f"scale {res.scale}, INCOMPLETE ({done} of {n} runs)"


def claim_counts(res) -> str:
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


def html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>"
                                                                for c in r) + "</tr>"
                                               for r in rows) + "</tbody></table>")


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(c) -> str:
        return str(c).replace("|", "\\|")
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows])


def declared_lists(art: Artifact) -> list[tuple[str, tuple[str, ...]]]:
    """What the artifact declares about its fidelity: deviations, and readings of the paper."""
    out = []
    if art.deviations:
        out.append(("Deviations from the paper declared by this artifact:", art.deviations))
    notes = getattr(art, "notes", ())
    if notes:
        out.append(("How the paper was read where it is silent or ambiguous:", notes))
    if art.protocol:  # a paper-text scale, where there is one, runs the text's reading
        text = " (the paper-text scale, the text)" if "paper-text" in art.scales else ""
        out.append(((f"Where the text is silent or differs from {art.protocol_from}, the quick "
                     f"and paper scales follow it{text}:"),
                    tuple(c.cited() for c in art.protocol)))
    return out


def numbers_rows(v: Verdict) -> list[list[str]]:
    return [[label, f"{value:.4g}", " ".join(map(str, seeds))]
            for label, (value, seeds) in v.numbers.items()]


def reproduce_hint(art: Artifact, res) -> str:
    scale = "quick"
    if res is not None and res.scale and not res.complete:
        scale = res.scale
    return f"plstm reproduce {art.id} --scale {scale}"


INTRO_MD = "Paper numbers are targets quoted from their sources, never outputs of this code."
INTRO_HTML = ("<p>Paper numbers are targets quoted from their sources, never outputs of this "
              "code. A claim <em>holds</em> or <em>does not hold</em> on the numbers shown "
              "beside it; <em>not enough runs</em> means a number it needs is missing.</p>")
OVERVIEW = ["artifact", "paper", "shown", "claims"]
