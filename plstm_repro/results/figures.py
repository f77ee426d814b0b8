"""``plstm plot``: an artifact's figure and tables drawn from the runs that count (see
:mod:`plstm_repro.results`); never trains. Illustrations drawn from a model need no runs."""

from __future__ import annotations

from pathlib import Path

from .. import results
from ..errors import IncompleteGrid
from ..experiments import check_scale, get_artifact
from ..layout import figure_dir
from ..tracking import MlflowTracker


def draw(art, history, root: Path, scale: str) -> list[Path]:
    """The artifact's figure and tables from ``history`` (the runs that count), in
    ``figure_dir(root, art.id, scale)``; an artifact without runs is an illustration."""
    from . import illustrations, plots

    out = figure_dir(root, art.id, scale)
    if not art.variants:
        return getattr(illustrations, art.plot)(art, None, out, scale)
    paths = getattr(plots, art.plot)(art, history, out, scale)
    if art.plot == "plot_fig6c":  # Fig. 6a beside it, from the same runs' checkpoints
        rows = plots.fig6c_rows(art, history, scale)
        paths += illustrations.plot_fig6a(art, rows, out, Path(root))
    return paths


def plot(name: str, scale: str | None = None, root: Path = Path("runs"),
         tracker: MlflowTracker | None = None) -> list[Path]:
    """``plstm plot``: draw an artifact from tracked runs only (never trains). Without a scale,
    the scale ``plstm report`` shows it at (:func:`plstm_repro.results.preferred_scales`)."""
    art = get_artifact(name)
    if not art.variants:  # an illustration drawn from a model, no runs needed
        return draw(art, None, root, scale or "quick")
    tracker = tracker or MlflowTracker(root=root)
    cover = results.coverage(tracker.runs(art.id), art)
    scales = [check_scale(scale, art)] if scale else results.preferred_scales(cover)
    first_error = None
    for sc in scales:
        runs = cover[sc][0] if sc in cover else results.counted(tracker.runs(art.id), art, sc)[0]
        if not runs:
            continue
        try:
            return draw(art, tracker.history(runs), root, sc)
        except IncompleteGrid as e:  # this scale lacks part of the grid: try the next one
            if scale:
                raise
            first_error = first_error or e
    if first_error is not None:
        raise first_error
    wanted = ""
    if scale:
        labels = sorted({f"{v.label} / {c.label}" for v, c, _, _ in art.runs(scale)})
        wanted = f" (its grid: {'; '.join(labels)})"
    raise IncompleteGrid(f"plot {name}: no finished runs at scale {scale or 'any'} in "
                         f"{tracker.uri}{wanted}; run `plstm reproduce {name} --scale "
                         f"{scale or 'quick'}`")
