"""``plstm reproduce``: an artifact's grid spread over processes and machines sharing one
store, then its figure and its parent run's summary once the whole grid is finished."""

from __future__ import annotations

import time
from pathlib import Path

from .. import results
from ..config import EXECUTION_KEYS, RunConfig, apply_overrides, to_dict
from ..config import execution as execution_of
from ..config_checks import check_device
from ..errors import IncompleteReproduction, UsageError
from ..experiments import ARTIFACTS, Artifact, check_scale, get_artifact
from ..layout import figure_dir
from ..results.figures import plot
from ..tracking import (
    BUSY_WRITERS,
    FAILED,
    FINISHED,
    KILLED,
    MlflowTracker,
    NullTracker,
    sqlite_path,
)
from . import leases
from .lifecycle import run_point, run_task
from .parents import ensure_parent, fill_parent
from .pool import Outcome, run_pool
from .shards import parse_shard, select_shard


def seconds_or_none(minutes: float | None) -> float | None:
    if minutes is None or minutes <= 0:
        return None
    return 60.0 * minutes


def execution_overrides(execution: list[str] | dict | None) -> dict:
    """The typed execution settings of ``--set``/``--device``; a key of the spec is refused
    (the artifact declares the spec; changing it would make another grid)."""
    run_as = apply_overrides(RunConfig(), execution or {})
    pairs = execution.items() if isinstance(execution, dict) else \
        [item.split("=", 1) for item in execution or []]
    bad = [k.strip() for k, _ in pairs if k.strip() not in EXECUTION_KEYS]
    if bad:
        raise UsageError(f"--set {bad[0]}: reproduce takes only execution settings "
                         f"({', '.join(EXECUTION_KEYS)}); the artifact declares the rest")
    check_device(run_as.train.device, "--device")
    return {k: v for k, v in execution_of(run_as).items()
            if k in {kk.strip() for kk, _ in pairs}}


def artifacts_for(name: str) -> list[Artifact]:
    if name == "all":
        return list(ARTIFACTS.values())
    return [get_artifact(name)]


def grid_state(tracker: MlflowTracker, art: Artifact, scale: str) -> dict[str, str]:
    """config hash -> finished | live | diverged | unfinished | missing, for the whole grid."""
    return leases.summarize(results.by_point(tracker.runs(art.id), results.planned(art, scale)))


def reproduce(name: str, scale: str = "quick", root: Path = Path("runs"), progress: bool = True,
              echo=print, *, jobs: int = 1, shard: str | None = None, restart: bool = False,
              checkpoint_minutes: float = 10.0, dry_run: bool = False,
              measure_steps: int = 3, execution: list[str] | dict | None = None) -> list[Path]:
    """Every run an artifact needs (variants x conditions x seeds), skipping finished ones,
    resuming interrupted ones, then its plot and the parent run's summary. ``all`` does every
    artifact. ``shard`` ("i/N") keeps the i-th of N disjoint parts of the grid, ``jobs`` trains
    that many points at once; processes and machines sharing one store never train one config
    twice, and the last one to finish an artifact's grid draws it. ``dry_run`` prints the plan
    (every grid point this command would train, with its time estimated from ``measure_steps``
    timed steps, see :mod:`plstm_repro.plan`) and returns: nothing is trained or tracked.
    ``execution`` sets how the points run (``train.device=cuda``, ``data.root=...``, see
    :data:`plstm_repro.config.EXECUTION_KEYS`): a run made another way counts the same."""
    from tqdm.auto import tqdm

    from ..train import dist_info

    _, rank, world = dist_info()
    arts, plan = _plan(name, scale, jobs, world, execution)
    mine = select_shard(list(enumerate(plan)), parse_shard(shard))
    say = echo if rank == 0 else (lambda s: None)
    if dry_run:  # before the tracker: a dry run creates no store, experiment or run
        if rank == 0:
            _print_plan(name, scale, [p for _, p in mine], len(plan), jobs, shard, root,
                        restart, measure_steps, progress, say)
        return []
    tracker = MlflowTracker(root=root) if rank == 0 else NullTracker()
    parents = _open_parents(tracker, mine, scale) if rank == 0 else {}
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(mine), desc=f"{name} ({scale})" + (f" shard {shard}" if shard else ""),
               disable=not progress or not mine or rank != 0, position=0, dynamic_ncols=True)
    line = bar.write if progress and rank == 0 else say  # lines above the bar, not through it
    point = {"scale": scale, "root": root, "parents": parents, "restart": restart,
             "every": seconds_or_none(checkpoint_minutes), "progress": progress}
    t0 = time.time()
    interrupted, written = False, []
    if jobs > BUSY_WRITERS and sqlite_path(getattr(tracker, "uri", "")) is not None:
        say(f"note: {jobs} processes will write to one local SQLite store; past "
            f"{BUSY_WRITERS} writers a tracking server is the better store (README: A grid over "
            "processes and machines)")
    try:
        if jobs > 1 and len(mine) > 1:
            run_pool(_tasks(mine, point, tracker), jobs, line,
                     lambda o: (outcomes.append(o), bar.update(1)), run_task)
        else:
            _run_serially(mine, point, tracker, line, lambda o: (outcomes.append(o),
                                                                 bar.update(1)))
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        if rank == 0:
            written = _close_artifacts(arts, scale, root, tracker, parents, interrupted, say,
                                       time.time() - t0)
    problems = _problems(plan, outcomes)
    if problems:
        raise IncompleteReproduction("some grid points did not finish here (the others "
                                     "did):\n" + "\n".join(problems))
    return written


def _plan(name: str, scale: str, jobs: int, world: int, execution) -> tuple[list, list]:
    """The artifacts of ``name`` at ``scale`` and their grid points (artifact, config), each
    run as ``execution`` says; every option checked before anything is tracked."""
    check_scale(scale)
    arts = artifacts_for(name)
    if name == "all":  # readings such as paper-text exist for some artifacts only
        arts = [a for a in arts if scale in a.scales]
    else:
        check_scale(scale, arts[0])
    if jobs < 1:
        raise UsageError(f"--jobs: expected a number >= 1, got {jobs}")
    if world > 1 and jobs > 1:
        raise UsageError("--jobs: under torchrun every process already works on one grid "
                         "point; leave --jobs out")
    run_as = execution_overrides(execution)
    return arts, [(art, apply_overrides(cfg, run_as)) for art in arts
                  for _, _, _, cfg in art.runs(scale)]


def _open_parents(tracker, mine: list, scale: str) -> dict[str, str]:
    """The parent run of each artifact of this shard, RUNNING while its grid has work left."""
    parents = {}
    for art in {a.id: a for (_, (a, _)) in mine}.values():
        parents[art.id] = ensure_parent(tracker, art, scale)
        if set(grid_state(tracker, art, scale).values()) != {"finished"}:
            tracker.reopen(parents[art.id])  # work to do: RUNNING until the grid is done
    return parents


def _tasks(mine: list, point: dict, tracker) -> list[dict]:
    """The grid points as plain data for the --jobs workers (see ``lifecycle.run_task``)."""
    return [{"index": k, "artifact": art.id, "scale": point["scale"], "config": to_dict(cfg),
             "parent": point["parents"].get(art.id), "restart": point["restart"],
             "checkpoint_every_s": point["every"], "root": str(point["root"]),
             "uri": tracker.uri} for k, (art, cfg) in mine]


def _run_serially(mine: list, point: dict, tracker, line, on_done) -> None:
    """The grid points one after another here; after an artifact's first user error its other
    points are skipped with the same message (they would meet it too)."""
    broken: dict[str, str] = {}
    for k, (art, cfg) in mine:
        if art.id in broken:
            on_done(Outcome(k, "error", broken[art.id]))
            continue
        out = run_point(art, cfg, point["scale"], tracker, Path(point["root"]), k,
                        point["parents"].get(art.id), point["restart"], point["every"],
                        point["progress"], line)
        if out.status == "error":
            broken[art.id] = out.message
        on_done(out)


def _print_plan(name, scale, points, n_grid, jobs, shard, root, restart, measure_steps,
                progress, say) -> None:
    """``reproduce --dry-run``: the points of this shard, each with its estimated time."""
    from ..plan import estimate, format_plan, method_note

    part = f" (shard {shard} of a grid of {n_grid})" if shard else ""
    say(f"Dry run of `plstm reproduce {name} --scale {scale}`: {len(points)} grid point(s)"
        f"{part}; nothing is trained, no run is created. Measuring each config here first.")
    rows = estimate(points, jobs=jobs, root=Path(root), restart=restart,
                    measure_steps=measure_steps, progress=progress)
    device = points[0][1].train.device if points else "cpu"
    say(format_plan(rows, jobs, footer=method_note(jobs, measure_steps, device)))


def _problems(plan: list, outcomes: list[Outcome]) -> list[str]:
    """One line per artifact and kind of problem, with the first message."""
    seen: dict[tuple[str, str], list] = {}
    for o in outcomes:
        if o.status in ("finished", "skipped"):
            continue
        art = plan[o.index][0]
        seen.setdefault((art.id, o.status), []).append(o)
    lines = []
    for (aid, status), outs in seen.items():
        text = outs[0].message.strip()
        first = (text.splitlines()[-1] if status == "crashed" else text) if text else status
        what = {"busy": "trained by another process right now (rerun when it is done)",
                "diverged": "failed on a non-finite loss", "error": "skipped",
                "unresumable": "have an unreadable checkpoint",
                "killed": "were interrupted", "crashed": "crashed"}.get(status, status)
        lines.append(f"{aid}: {len(outs)} point(s) {what}: {first}")
    return lines


def _close_artifacts(arts, scale, root, tracker, parents, interrupted, say,
                     seconds: float) -> list[Path]:
    """For each artifact this process touched: when its whole grid is finished, draw it and
    store the summary, figure and claims in its parent run; else say what is missing."""
    written: list[Path] = []
    for art in arts:
        if not art.variants:  # an illustration drawn from a model, no runs needed
            if not interrupted:
                paths = plot(art.id, scale, root, tracker=tracker)
                written += paths
                _show_table(paths, say)
            continue
        if art.id not in parents:
            continue
        state = grid_state(tracker, art, scale)
        counts = {k: sum(v == k for v in state.values()) for k in set(state.values())}
        done = counts.get("finished", 0)
        parent = parents[art.id]
        if done == len(state):
            from ..results.report import artifact_results, draw

            res = artifact_results(tracker, art, scale)
            paths = draw(art, res, root)
            written += paths
            fill_parent(tracker, res, parent, paths)
            tracker.end(parent, FINISHED)
            say(f"{art.id}: {len(state)} runs, {seconds:.0f} s here; figure in "
                f"{figure_dir(root, art.id, scale)}; parent run {parent[:8]}")
            _show_table(paths, say)
            continue
        rest = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if k != "finished")
        say(f"{art.id}: {done} of {len(state)} grid points finished ({rest}); the figure is "
            "drawn once all are")
        if interrupted:
            tracker.end(parent, KILLED)
        elif counts.get("diverged", 0) and not counts.get("missing", 0) and \
                not counts.get("unfinished", 0) and not counts.get("live", 0):
            tracker.end(parent, FAILED)
        else:
            tracker.reopen(parent)
    return written


def _show_table(paths: list[Path], say) -> None:
    """The drawn artifact's table (ours beside the paper's, its .md file) on the terminal."""
    for p in paths:
        if p.suffix == ".md" and p.is_file():
            say("")
            say(p.read_text(encoding="utf-8").rstrip())
            say("")
