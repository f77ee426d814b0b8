"""Which tracked runs count: one answer for ``plot``, ``report``, ``reproduce`` and its dry run.

A run belongs to a grid point when the spec hash of the config it logged (recomputed from its
params, never read from a stored tag, so runs made before a field was added, or on another
device, data root or evaluation batch size, still count) equals the hash of the point's config.
Of a point's finished runs the newest counts; parent runs never do.
"""

from __future__ import annotations

import functools

from ..config import from_params, spec_hash
from ..errors import ConfigError
from ..tracking import FINISHED, ROLE_TAG


@functools.lru_cache(maxsize=65536)
def _hash_of_params(items: tuple) -> str | None:
    try:
        return spec_hash(from_params(dict(items)))
    except ConfigError:  # logged by a version whose fields this one cannot read
        return None


def run_spec_hash(run) -> str | None:
    """The spec hash of the config ``run`` logged, or None (a parent run, an unreadable one)."""
    if run.data.tags.get(ROLE_TAG) == "parent" or not run.data.params:
        return None
    return _hash_of_params(tuple(sorted(run.data.params.items())))


def planned(art, scale: str) -> list[str]:
    """The spec hashes of the artifact's grid at ``scale``, in grid order."""
    return [spec_hash(cfg) for *_, cfg in art.runs(scale)]


def by_point(runs: list, hashes) -> dict[str, list]:
    """spec hash -> the runs (parents left out) of that grid point, for every hash asked."""
    out: dict[str, list] = {h: [] for h in hashes}
    for r in runs:
        h = run_spec_hash(r)
        if h in out:
            out[h].append(r)
    return out


def newest_finished(runs: list) -> object | None:
    done = [r for r in runs if r.info.status == FINISHED]
    return max(done, key=lambda r: r.info.start_time) if done else None


def counted(runs: list, art, scale: str) -> tuple[list, int]:
    """The newest finished run of each grid point of ``art`` at ``scale`` (runs of an older
    declaration do not count), and the grid size."""
    points = by_point(runs, planned(art, scale))
    chosen = [newest_finished(rs) for rs in points.values()]
    return [r for r in chosen if r is not None], len(points)


BEST_FIRST = ("paper", "quick", "smoke")  # the scales an artifact is shown at, largest first


def coverage(runs: list, art) -> dict[str, tuple[list, int]]:
    """scale -> (the runs that count, the grid size), for every scale of BEST_FIRST."""
    return {sc: counted(runs, art, sc) for sc in BEST_FIRST}


def preferred_scales(cover: dict[str, tuple[list, int]]) -> list[str]:
    """The scales to show an artifact at, best first: the complete ones (largest first), then
    the partly covered ones by the share of their grid that finished."""
    complete = [sc for sc in BEST_FIRST if cover[sc][1] and len(cover[sc][0]) == cover[sc][1]]
    partial = sorted((sc for sc in BEST_FIRST if cover[sc][0] and sc not in complete),
                     key=lambda sc: -len(cover[sc][0]) / cover[sc][1])
    return complete + partial


def find(tracker, experiment: str, h: str, statuses: tuple[str, ...]) -> list:
    """Runs of the spec ``h`` in these statuses, newest first."""
    found = [r for r in tracker.runs(experiment)
             if r.info.status in statuses and run_spec_hash(r) == h]
    return sorted(found, key=lambda r: r.info.start_time, reverse=True)
