"""The report's two writers, fed by one walk over the sections (:func:`render`): each says an
element its own way (HTML page with figures inlined, markdown with figures beside it); what is
shown, and in which order, is decided once in :func:`_section`."""

from __future__ import annotations

import base64
import html

from ..claims import Verdict
from ..reference import paper_values
from .report_render import (
    BADGE,
    CSS,
    INTRO_HTML,
    INTRO_MD,
    OVERVIEW,
    RUN_HEADER,
    Section,
    claim_counts,
    coverage_text,
    declared_lists,
    duration,
    html_table,
    md_table,
    md_to_html,
    numbers_rows,
    reproduce_hint,
    run_rows,
    section_status,
    wall_seconds,
)


def render(sections: list[Section], meta: dict, images: dict[str, str]) -> tuple[str, str]:
    """(HTML, markdown) of the report, from one walk over ``sections``."""
    outs = (HtmlOut(), MdOut(images))
    rows = [[s.art.id, s.art.paper_ref, section_status(s), claim_counts(s.res)] for s in sections]
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
        show.append(("not_run", reproduce_hint(art, res)))
    elif res is not None and not res.complete:
        show.append(("incomplete", res.coverage[res.scale], reproduce_hint(art, res)))
    if res is not None and res.scale and not s.table_md:
        show.append(("scale_note", res.scale, art.scales[res.scale]))
    if getattr(art, "synthetic", False):
        show.append(("synthetic",))
    show += [("declared", head, items) for head, items in declared_lists(art)]
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
            html_table(OVERVIEW, rows)]

    def head(self, s: Section) -> None:
        esc, art, res = html.escape, s.art, s.res
        self.parts.append(f"<h2 id='{esc(art.id)}'>{esc(art.paper_ref)}: {esc(art.title)}</h2>")
        self.parts.append(f"<p class='meta'>artifact <code>{esc(art.id)}</code> · "
                          f"{esc(section_status(s))}"
                          + (f" · {esc(coverage_text(res))}" if res else "") + "</p>")

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
        self.parts.append("<h3>Runs</h3>" + html_table(RUN_HEADER, run_rows(res)))
        self.parts.append(f"<p class='meta'>Total wall time of these runs: "
                          f"{html.escape(duration(sum(wall_seconds(r) or 0 for r in res.runs)))}.</p>")

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
            + (html_table(["number", "value", "seeds"], numbers_rows(v))
               if v.numbers else "") + "</div>")


class MdOut:
    """The report as markdown, figures as files beside it (``images``: artifact -> path)."""

    def __init__(self, images: dict[str, str]):
        self.images, self.out = images, []

    def start(self, meta: dict, rows: list) -> None:
        self.out += [f"# {meta['title']}", ""] + [f"- {k}: {v}" for k, v in meta["lines"]] + [
            "", INTRO_MD, "", "## Overview", "", md_table(OVERVIEW, rows)]

    def head(self, s: Section) -> None:
        art, res = s.art, s.res
        self.out += ["", f"## {art.paper_ref}: {art.title}", "",
                     f"artifact `{art.id}` · {section_status(s)}"
                     + (f" · {coverage_text(res)}" if res else ""), ""]

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
        self.out += ["### Runs", "", md_table(RUN_HEADER, run_rows(res)), "",
                     (f"Total wall time of these runs: "
                      f"{duration(sum(wall_seconds(r) or 0 for r in res.runs))}."), ""]

    def end(self) -> str:
        return "\n".join(self.out) + "\n"
