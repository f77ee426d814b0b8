"""A grid point's lifecycle: decide (skip, resume, start or back off), then train it.

:func:`decide` reads the store (see :mod:`plstm_repro.results` for which runs belong to a
config) and takes a lease (:mod:`.leases`); :func:`run_one` trains what it decided;
:func:`run_point` turns a grid point's ending into an :class:`~.pool.Outcome`.
"""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import results
from ..config import RunConfig, from_dict, spec_hash
from ..errors import CheckpointError, NonFiniteLoss, UserError
from ..experiments import Artifact, get_artifact, labels_for
from ..layout import checkpoint_path
from ..tracking import (
    FAILED,
    FINISHED,
    KILLED,
    PARENT_TAG,
    ROLE_TAG,
    RUNNING,
    MlflowTracker,
    environment_tags,
)
from ..training.callbacks import RunCurves
from . import leases
from .kinds import user_error_types
from .pool import Outcome


@dataclass
class Decision:
    """What to do with one config: ``skip`` (finished), ``diverged`` (failed on a non-finite
    loss: rerunning gives the same), ``busy`` (another process trains it), ``resume``
    (``run_id`` leased, continue from its checkpoint) or ``new`` (``run_id`` leased, fresh)."""

    action: str
    run_id: str | None = None
    note: str = ""


def decide(tracker: MlflowTracker, experiment: str, cfg: RunConfig, root: Path, start, *,
           resume: bool = True, restart: bool = False, skip_finished: bool = True,
           exclusive: bool = True) -> Decision:
    """Skip, resume or start ``cfg`` (rank 0 only). ``start(extra_tags)`` creates a new run.

    With ``exclusive`` a lease on the run is taken in the store first (see :mod:`.leases`), so
    no two processes train one config at once. An unfinished run whose checkpoint cannot be
    read raises CheckpointError naming the file; ``restart`` starts afresh instead (the old
    runs are tagged as superseded, nothing is deleted).
    """
    h = spec_hash(cfg)
    runs = results.find(tracker, experiment, h, (FINISHED, FAILED, KILLED, RUNNING)) \
        if exclusive or resume or skip_finished else []
    if skip_finished:
        done = [r for r in runs if r.info.status == FINISHED]
        if done:
            return Decision("skip", done[0].info.run_id)
    if exclusive:
        live = [r for r in runs if leases.is_live(r)]
        if live:
            r = live[0]
            where = r.data.tags.get(leases.LEASE_TAG, "?").rsplit(":", 1)[0]
            age = leases.heartbeat_age(r)
            return Decision("busy", r.info.run_id,
                            f"being trained by {where} (heartbeat {age:.0f} s ago; taken as "
                            f"dead, and resumable, once it is {leases.STALE_S:.0f} s old: in "
                            f"about {max(leases.STALE_S - age, 0):.0f} s)")
    old = leases.unfinished(runs)
    if not restart:
        diverged = [r for r in old if r.info.status == FAILED
                    and leases.FAILURE_TAG in r.data.tags]
        if diverged and exclusive:
            r = diverged[0]
            return Decision("diverged", r.info.run_id,
                                 f"run {r.info.run_id[:8]} failed on a "
                                 f"{r.data.tags[leases.FAILURE_TAG]}; the same config fails the "
                                 "same way again (--restart retrains it anyway)")
        if resume:
            found = _resume_one(tracker, experiment, h, old, root, exclusive)
            if found is not None:
                return found
    if not exclusive:
        return Decision("new", start({}))
    rid = leases.lease_new(tracker, experiment, h, start)
    if rid is None:
        return Decision("busy", None, "leased by another process")
    if restart:
        for r in old:
            tracker.set_tags(r.info.run_id, {leases.SUPERSEDED_TAG: rid})
    return Decision("new", rid)


def _resume_one(tracker, experiment: str, h: str, old: list, root: Path,
                exclusive: bool) -> Decision | None:
    """Resume the newest unfinished run whose checkpoint is readable (leased first when
    ``exclusive``); None when there is none to resume."""
    from ..train import load_checkpoint

    for r in old:
        if r.info.status == FAILED and leases.FAILURE_TAG in r.data.tags:
            continue
        path = checkpoint_path(root, r.info.run_id)
        if not path.exists():
            continue
        try:
            load_checkpoint(path)
        except CheckpointError as e:
            raise CheckpointError(
                f"{e}. It belongs to the unfinished run {r.info.run_id[:8]}; --restart trains "
                "this config afresh in a new run (nothing is deleted)") from None
        if not exclusive:
            return Decision("resume", r.info.run_id)
        if leases.lease_resume(tracker, experiment, h, r):
            return Decision("resume", r.info.run_id)
        return Decision("busy", r.info.run_id, "leased by another process")
    return None


def run_one(cfg: RunConfig, artifact: Artifact | None, scale: str, tracker: MlflowTracker,
            root: Path, resume: bool = True, skip_finished: bool = True, progress: bool = True,
            echo=print, *, experiment: str | None = None, role: str = "child",
            parent_id: str | None = None, restart: bool = False, exclusive: bool = True,
            checkpoint_every_s: float | None = 600.0):
    """Train one config, or skip it when a finished run of the same resolved config exists;
    with ``resume`` an unfinished one (killed, failed) continues from its last checkpoint.
    Under torchrun rank 0 decides and the other ranks follow."""
    from ..train import RunResult, dist_info, start_run

    experiment = experiment or (artifact.id if artifact else f"train-{cfg.data.name}")
    var, cond = labels_for(artifact, cfg)
    dist, rank, _ = dist_info()
    tags = {"artifact": artifact.id if artifact else "", "scale": scale, "variant": var,
            "condition": cond, "paper_ref": artifact.paper_ref if artifact else "",
            ROLE_TAG: role, **environment_tags()}
    if parent_id:
        tags[PARENT_TAG] = parent_id
    name = f"{var} | {cond} | seed {cfg.seed} | {scale}" + (" | ad hoc" if role == "adhoc"
                                                             else "")
    decision = _shared_decision(dist, rank, lambda: decide(
        tracker, experiment, cfg, Path(root),
        lambda extra: start_run(tracker, cfg, experiment, name, {**tags, **extra}),
        resume=resume, restart=restart, skip_finished=skip_finished, exclusive=exclusive))
    head = f"{experiment} | {var} | {cond} | seed {cfg.seed}"
    if decision.action == "skip":
        found = tracker.get_run(decision.run_id) if rank == 0 else None
        metrics = dict(found.data.metrics) if found else {}
        echo(f"skip  {head}: finished as run {decision.run_id[:8]}")
        return RunResult(decision.run_id, FINISHED, metrics, None, 0.0, skipped=True)
    if decision.action in ("busy", "diverged"):
        echo(f"{decision.action:5s} {head}: {decision.note}")
        return RunResult(decision.run_id or "", decision.action.upper(), {}, None, 0.0,
                         skipped=True, note=decision.note)
    if decision.action == "resume":
        echo(f"resume run {decision.run_id[:8]} from its last checkpoint")
    res = _train(cfg, artifact, tracker, root, decision, exclusive, progress, echo,
                 checkpoint_every_s, experiment=experiment, name=name, tags=tags)
    echo(summary_line(experiment, var, cond, cfg.seed, res))
    return res


def _shared_decision(dist, rank: int, decide_here) -> Decision:
    """Rank 0 decides (only it talks to the tracker) and the other ranks follow; a user error
    there is raised on every rank."""
    decision, error = None, None
    if rank == 0:
        try:
            decision = decide_here()
        except user_error_types() as e:  # the other ranks learn it too
            decision, error = Decision("error", None, str(e)), e
    if dist is not None:
        shared = [decision]
        dist.broadcast_object_list(shared, src=0)
        decision = shared[0]
    if decision.action == "error":
        raise error if error is not None else UserError(decision.note)
    return decision


def _train(cfg: RunConfig, artifact, tracker, root: Path, decision: Decision, exclusive: bool,
           progress: bool, echo, checkpoint_every_s, *, experiment: str, name: str, tags: dict):
    """Train what ``decision`` says (a new run or a resumed one) under a heartbeat; a run
    left RUNNING by an exception here ends KILLED or FAILED."""
    from ..data import ensure_generated
    from ..train import dist_info, fit

    dist, rank, _ = dist_info()
    beat = leases.Heartbeat(tracker, decision.run_id) if rank == 0 and exclusive else None
    evaluations = {c.label: c.overrides for c in artifact.evaluations} if artifact else None
    try:
        with beat or contextlib.nullcontext():
            if rank == 0:
                ensure_generated(cfg.data, progress, echo)
            if dist is not None:
                dist.barrier()
            res = fit(cfg, tracker, experiment=experiment, run_name=name, tags=tags, root=root,
                      resume_run_id=decision.run_id if decision.action == "resume" else None,
                      run_id=decision.run_id if decision.action == "new" else None,
                      progress=progress, checkpoint_every_s=checkpoint_every_s,
                      evaluations=evaluations, callbacks=(RunCurves(),))
    except BaseException as e:  # a lease must not stay RUNNING after its process gave up
        if rank == 0 and tracker.get_run(decision.run_id).info.status == RUNNING:
            tracker.end(decision.run_id, KILLED if isinstance(e, KeyboardInterrupt) else FAILED)
        raise
    return res


def summary_line(experiment, var, cond, seed, res) -> str:
    shown = [f"{k} {res.metrics[k]:.4g}" for k in ("test_acc", "test_mse", "train_acc",
                                                     "updates_per_neuron") if k in res.metrics]
    return (f"done  {experiment} | {var} | {cond} | seed {seed} | {' | '.join(shown)} | "
            f"{res.seconds:.0f} s | run {res.run_id[:8]}")


def run_point(art: Artifact, cfg: RunConfig, scale: str, tracker: MlflowTracker, root: Path,
              index: int, parent_id: str | None, restart: bool = False,
              checkpoint_every_s: float | None = 600.0, progress: bool = True,
              echo=print) -> Outcome:
    """One grid point, its ending as an Outcome (user errors become outcomes; Ctrl-C and
    SIGTERM propagate after the run is checkpointed and marked KILLED)."""
    try:
        res = run_one(cfg, art, scale, tracker, Path(root), progress=progress, echo=echo,
                      parent_id=parent_id, restart=restart,
                      checkpoint_every_s=checkpoint_every_s)
    except NonFiniteLoss as e:
        echo(f"FAILED {art.id}: {e}")
        return Outcome(index, "diverged", str(e), getattr(e, "run_id", None))
    except CheckpointError as e:
        return Outcome(index, "unresumable", str(e))
    except user_error_types() as e:
        echo(f"{art.id}: skipped: {e}")
        return Outcome(index, "error", str(e))
    except Exception:  # noqa: BLE001 - a bug, not a skipped point: shown whole, as crashed
        trace = traceback.format_exc()
        echo(f"CRASHED {art.id} (grid point {index}):\n{trace.rstrip()}")
        return Outcome(index, "crashed", trace)
    if res.skipped:
        status = "skipped" if res.status == FINISHED else res.status.lower()
        return Outcome(index, status, res.note, res.run_id)
    return Outcome(index, "finished", "", res.run_id)


def run_task(task: dict, echo=print) -> Outcome:
    """A --jobs worker's grid point (plain data in, so it crosses processes)."""
    tracker = MlflowTracker(uri=task["uri"], root=task["root"])
    return run_point(get_artifact(task["artifact"]), from_dict(task["config"]), task["scale"],
                     tracker, Path(task["root"]), task["index"], task["parent"],
                     task["restart"], task["checkpoint_every_s"], progress=False, echo=echo)
