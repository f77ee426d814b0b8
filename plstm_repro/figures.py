"""``plstm plot``: an artifact's figure and tables drawn from the runs that count (see
:mod:`plstm_repro.results`); never trains. Illustrations drawn from a model need no runs."""

from __future__ import annotations

from pathlib import Path

from . import results
from .errors import IncompleteGrid
from .experiments import check_scale, get_artifact
from .layout import figure_dir
from .tracking import MlflowTracker


def plot(name: str, scale: str | None = None, root: Path = Path("runs"),
         tracker: MlflowTracker | None = None) -> list[Path]:
    """``plstm plot``: draw an artifact from tracked runs only (never trains). Without a scale,
    the largest scale whose runs cover the artifact's grid."""
    from . import plots

    art = get_artifact(name)
    fn = getattr(plots, art.plot)
    if not art.variants:  # an illustration drawn from a model, no runs needed
        return fn(art, None, figure_dir(root, art.id, scale or "quick"), scale or "quick")
    tracker = tracker or MlflowTracker(root=root)
    all_runs = tracker.runs(art.id)
    scales = [check_scale(scale, art)] if scale else ["paper", "quick", "smoke"]
    first_error = None
    for sc in scales:
        runs, n = results.counted(all_runs, art, sc)
        if not runs:
            continue
        try:
            return fn(art, tracker.history(runs), figure_dir(root, art.id, sc), sc)
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
