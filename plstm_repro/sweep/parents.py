"""Parent runs: one per (artifact, scale), holding its grid points as children and, once the
grid is finished, its summary table, the paper claims' verdicts and its figure."""

from __future__ import annotations

import time
from pathlib import Path

from ..experiments import Artifact
from ..tracking import KILLED, ROLE_TAG, MlflowTracker, environment_tags
from . import leases


def parent_name(art: Artifact, scale: str) -> str:
    return f"{art.id} | {art.paper_ref} | scale {scale}"


def ensure_parent(tracker: MlflowTracker, art: Artifact, scale: str) -> str:
    """The parent run of (artifact, scale), created once for every process and machine: if
    several appear at once, the oldest stays and the others are deleted (they hold nothing)."""
    exp = art.id
    desc = (f"{art.paper_ref}: {art.title}. One parent run per scale; its children are the "
            "grid points. `plstm report` checks the paper's claims on them.")
    tracker.experiment_id(exp, description=desc)
    filt = f"tags.`{ROLE_TAG}` = 'parent' AND tags.scale = '{scale}'"
    found = tracker.runs(exp, filt)
    if not found:
        sc = art.scales[scale]
        tags = {"artifact": art.id, "scale": scale, "paper_ref": art.paper_ref,
                ROLE_TAG: "parent", "grid_size": len(art.runs(scale)), **environment_tags(),
                "mlflow.note.content": f"{art.title}. Scale {scale}: {sc.note or 'see params'}"}
        params = {"scale": scale, "seeds": sc.seeds,
                  **{k: v for k, v in sc.overrides.items()}}
        mine = tracker.start(exp, parent_name(art, scale), params, tags)
        time.sleep(leases.settle_s())
        found = tracker.runs(exp, filt)
        winner = min(found, key=leases.lease_key)
        if winner.info.run_id != mine:
            tracker.end(mine, KILLED)
            tracker.delete(mine)
        return winner.info.run_id
    return min(found, key=leases.lease_key).info.run_id


def fill_parent(tracker: MlflowTracker, res, parent: str, paths: list[Path]) -> None:
    """The parent run holds the summary table, the claims' verdicts and the figure."""
    art, scale = res.artifact, res.scale
    tracker.log_table(parent, res.summary, f"summary/{art.id}_{scale}.json")
    if res.verdicts:
        tracker.log_table(parent, res.claims_table(), f"claims/{art.id}_{scale}.json")
        tracker.set_tags(parent, {f"claim.{v.claim.id}": v.verdict for v in res.verdicts})
    for p in paths:
        if p.suffix in (".png", ".pdf", ".md", ".csv"):
            tracker.log_artifact(parent, p, "figure")
