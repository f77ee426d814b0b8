"""Rendering of the reproduction report: one walk over the sections feeds both the HTML and
the markdown writer (each says an element its own way; what is shown, and in which order, is
decided once)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..claims import FAILS, HOLDS, NOT_ENOUGH, Verdict
from ..experiments import SCALES, Artifact
from ..reference import paper_values

BEST_FIRST = tuple(reversed(SCALES))  # paper, quick, smoke


@dataclass
class Section:
    art: Artifact
    res: object | None  # report.ArtifactResults
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


def _run_rows(res) -> list[list[str]]:
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


def _coverage_text(res) -> str:
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


def _claim_counts(res) -> str:
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


def _reproduce_hint(art: Artifact, res) -> str:
    scale = "quick"
    if res is not None and res.scale and not res.complete:
        scale = res.scale
    return f"plstm reproduce {art.id} --scale {scale}"


INTRO_MD = "Paper numbers are targets quoted from their sources, never outputs of this code."
INTRO_HTML = ("<p>Paper numbers are targets quoted from their sources, never outputs of this "
              "code. A claim <em>holds</em> or <em>does not hold</em> on the numbers shown "
              "beside it; <em>not enough runs</em> means a number it needs is missing.</p>")
OVERVIEW = ["artifact", "paper", "shown", "claims"]


def render(sections: list[Section], meta: dict, images: dict[str, str]) -> tuple[str, str]:
    """(HTML, markdown) of the report, from one walk over ``sections``."""
    outs = (HtmlOut(), MdOut(images))
    rows = [[s.art.id, s.art.paper_ref, _status(s), _claim_counts(s.res)] for s in sections]
    for o in outs:
        o.start(meta, rows)
    for s in sections:
        _section(s, outs)
    return outs[0].end(), outs[1].end()


def render_html(sections: list[Section], meta: dict) -> str:
    return render(sections, meta, {})[0]


def render_md(sections: list[Section], meta: dict, images: dict[str, str]) -> str:
    return render(sections, meta, images)[1]


def _section(s: Section, outs) -> None:
    """What one artifact's section shows, decided once, said by every writer."""
    art, res = s.art, s.res
    show = []
    show.append(("head", s))
    if art.variants and (res is None or res.scale is None):
        show.append(("not_run", _reproduce_hint(art, res)))
    elif res is not None and not res.complete:
        show.append(("incomplete", res.coverage[res.scale], _reproduce_hint(art, res)))
    if res is not None and res.scale and not s.table_md:
        show.append(("scale_note", res.scale, art.scales[res.scale]))
    if getattr(art, "synthetic", False):
        show.append(("synthetic",))
    show += [("declared", head, items) for head, items in _declared(art)]
    show.append(("image", s))
    if s.problem:
        show.append(("problem", s.problem))
    if s.table_md:
        show.append(("table", s.table_md))
    if res is not None and res.verdicts:
        show.append(("claims", res.verdicts))
    elif not s.table_md and paper_values(art.id).statements:
        show.append(("statements", paper_values(art.id).statements))
    if res is not None and res.runs:
        show.append(("runs", res))
    for what, *args in show:
        for o in outs:
            getattr(o, what)(*args)


class HtmlOut:
    """The report as one self-contained HTML page (figures inlined)."""

    def __init__(self):
        self.parts: list[str] = []

    def start(self, meta: dict, rows: list) -> None:
        esc = html.escape
        self.parts += [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{esc(meta['title'])}</title><style>{CSS}</style></head><body>",
            f"<h1>{esc(meta['title'])}</h1>",
            "<p class='meta'>" + "<br>".join(esc(f"{k}: {v}") for k, v in meta["lines"])
            + "</p>", INTRO_HTML, "<h2 id='overview'>Overview</h2>",
            _html_table(OVERVIEW, rows)]

    def head(self, s: Section) -> None:
        esc, art, res = html.escape, s.art, s.res
        self.parts.append(f"<h2 id='{esc(art.id)}'>{esc(art.paper_ref)}: {esc(art.title)}</h2>")
        self.parts.append(f"<p class='meta'>artifact <code>{esc(art.id)}</code> · "
                          f"{esc(_status(s))}"
                          + (f" · {esc(_coverage_text(res))}" if res else "") + "</p>")

    def not_run(self, hint: str) -> None:
        self.parts.append(f"<p class='notrun'>Not run yet. Run <code>{html.escape(hint)}</code>,"
                          " then <code>plstm report</code> again.</p>")

    def incomplete(self, coverage: tuple, hint: str) -> None:
        self.parts.append(f"<p class='notrun'>Incomplete: the figure and the claims use the "
                          f"{coverage[0]} finished of {coverage[1]} grid points. <code>"
                          f"{html.escape(hint)}</code> runs the rest.</p>")

    def scale_note(self, scale: str, sc) -> None:
        self.parts.append(f"<p>Scale <code>{html.escape(scale)}</code>: "
                          f"{html.escape(sc.note or '-')}; {sc.seeds} seed(s) planned.</p>")

    def synthetic(self) -> None:
        self.parts.append("<p class='notrun'>SYNTHETIC stand-in dataset: these results are never "
                          "compared with the paper's.</p>")

    def declared(self, head: str, items) -> None:
        esc = html.escape
        self.parts.append(f"<p><strong>{esc(head)}</strong></p><ul>"
                          + "".join(f"<li>{esc(d)}</li>" for d in items) + "</ul>")

    def image(self, s: Section) -> None:
        if s.png is not None:
            data = base64.b64encode(s.png.read_bytes()).decode()
            self.parts.append(f"<p><img alt='{html.escape(s.art.paper_ref)} figure' "
                              f"src='data:image/png;base64,{data}'></p>")

    def problem(self, text: str) -> None:
        self.parts.append(f"<p class='notrun'>{html.escape(text)}</p>")

    def table(self, table_md: str) -> None:
        self.parts.append("<h3>Ours beside the paper's</h3>" + md_to_html(table_md))

    def claims(self, verdicts: list[Verdict]) -> None:
        self.parts.append("<h3>The paper's claims</h3>")
        self.parts += [_html_claim(v) for v in verdicts]

    def statements(self, statements) -> None:
        self.parts.append("<p class='meta'>No claim of this artifact is declared as a "
                          "predicate; the source's words:</p><ul>" + "".join(
                              f"<li>{html.escape(t)}</li>" for t in statements) + "</ul>")

    def runs(self, res) -> None:
        self.parts.append("<h3>Runs</h3>" + _html_table(RUN_HEADER, _run_rows(res)))
        self.parts.append(f"<p class='meta'>Total wall time of these runs: "
                          f"{html.escape(_duration(sum(_wall(r) or 0 for r in res.runs)))}.</p>")

    def end(self) -> str:
        return "\n".join([*self.parts, "</body></html>"])


def _html_claim(v: Verdict) -> str:
    esc, c = html.escape, v.claim
    return (f"<div class='claim'><span class='v {BADGE[v.verdict]}'>{esc(v.verdict)}"
            f"</span> <strong>{esc(c.statement)}</strong> <span class='meta'>"
            f"({esc(c.source)}; <code>{esc(c.id)}</code>)</span><br>"
            f"<span class='meta'>Measured as: {esc(c.measured_as)}</span>"
            + (f"<div class='checks'>{esc(chr(10).join(v.checks))}</div>" if v.checks else "")
            + (f"<div class='checks'>missing: {esc('; '.join(v.missing))}</div>"
               if v.missing else "")
            + (_html_table(["number", "value", "seeds"], _numbers_rows(v))
               if v.numbers else "") + "</div>")


class MdOut:
    """The report as markdown, figures as files beside it (``images``: artifact -> path)."""

    def __init__(self, images: dict[str, str]):
        self.images, self.out = images, []

    def start(self, meta: dict, rows: list) -> None:
        self.out += [f"# {meta['title']}", ""] + [f"- {k}: {v}" for k, v in meta["lines"]] + [
            "", INTRO_MD, "", "## Overview", "", _md_table(OVERVIEW, rows)]

    def head(self, s: Section) -> None:
        art, res = s.art, s.res
        self.out += ["", f"## {art.paper_ref}: {art.title}", "",
                     f"artifact `{art.id}` · {_status(s)}"
                     + (f" · {_coverage_text(res)}" if res else ""), ""]

    def not_run(self, hint: str) -> None:
        self.out += [f"**Not run yet.** Run `{hint}`, then `plstm report` again.", ""]

    def incomplete(self, coverage: tuple, hint: str) -> None:
        self.out += [(f"**Incomplete**: {coverage[0]} of {coverage[1]} grid points finished; "
                      f"`{hint}` runs the rest."), ""]

    def scale_note(self, scale: str, sc) -> None:
        self.out += [f"Scale `{scale}`: {sc.note or '-'}; {sc.seeds} seed(s) planned.", ""]

    def synthetic(self) -> None:
        self.out += [("**SYNTHETIC stand-in dataset**: these results are never compared with "
                      "the paper's."), ""]

    def declared(self, head: str, items) -> None:
        self.out += [head, ""] + [f"- {d}" for d in items] + [""]

    def image(self, s: Section) -> None:
        if s.art.id in self.images:
            self.out += [f"![{s.art.paper_ref}]({self.images[s.art.id]})", ""]

    def problem(self, text: str) -> None:
        self.out += [text, ""]

    def table(self, table_md: str) -> None:
        self.out += ["### Ours beside the paper's", "", table_md, ""]

    def claims(self, verdicts: list[Verdict]) -> None:
        self.out += ["### The paper's claims", ""]
        for v in verdicts:
            c = v.claim
            self.out += [f"- **{v.verdict}**: {c.statement} ({c.source}; `{c.id}`)",
                         f"  - measured as: {c.measured_as}"]
            self.out += [f"  - `{line}`" for line in v.checks]
            if v.missing:
                self.out.append(f"  - missing: {'; '.join(v.missing)}")
            if v.numbers:
                self.out.append("  - seeds: " + "; ".join(
                    f"{label}: {' '.join(map(str, seeds))}"
                    for label, (_, seeds) in v.numbers.items()))
        self.out.append("")

    def statements(self, statements) -> None:
        pass  # the markdown shows the plot's own table, which quotes them

    def runs(self, res) -> None:
        self.out += ["### Runs", "", _md_table(RUN_HEADER, _run_rows(res)), "",
                     (f"Total wall time of these runs: "
                      f"{_duration(sum(_wall(r) or 0 for r in res.runs))}."), ""]

    def end(self) -> str:
        return "\n".join(self.out) + "\n"
