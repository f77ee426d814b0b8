"""Plain functions behind the CLI: train one run, evaluate, reproduce and plot an artifact."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from . import grid
from .config import RunConfig, apply_overrides, config_hash, from_dict, to_dict
from .data import check_dataset
from .errors import CheckpointError, IncompleteReproduction, NonFiniteLoss, UserError
from .experiments import ARTIFACTS, Artifact, Cell, check_scale, default_artifact, get_artifact, \
    variant_overrides
from .models import resolve_model_name
from .tracking import (
    FAILED,
    FINISHED,
    KILLED,
    PARENT_TAG,
    ROLE_TAG,
    RUNNING,
    MlflowTracker,
    NullTracker,
    environment_tags,
)
from .train import checkpoint_path, load_checkpoint


def _matches(cell: Cell, cfg: RunConfig) -> bool:
    probe = apply_overrides(cfg, cell.overrides)
    return probe == cfg


def labels_for(artifact: Artifact | None, cfg: RunConfig) -> tuple[str, str]:
    """The artifact's variant and condition labels that describe ``cfg`` (for plotting)."""
    if artifact is None:
        return cfg.model.name, cfg.data.sampling
    def best(cells, default):  # the most specific match: "LSTM, t/100" over "LSTM"
        found = [c for c in cells if _matches(c, cfg)]
        return max(found, key=lambda c: len(c.overrides)).label if found else default
    return best(artifact.variants, cfg.model.name), best(artifact.conditions, "custom")


def resolve_train_config(dataset: str, model: str, scale: str = "quick", seed: int = 0,
                         overrides: list[str] | None = None) -> tuple[RunConfig, Artifact | None]:
    """The config of ``plstm train DATASET --model MODEL``: the dataset's artifact settings at
    ``scale``, then the model, the seed and the user's ``--set`` overrides (in that order)."""
    check_dataset(dataset)
    check_scale(scale)
    model = resolve_model_name(model)
    art = default_artifact(dataset)
    if art is not None:
        check_scale(scale, art)
    chosen = {"data.name": dataset, **variant_overrides(art, model), "seed": seed}
    cfg = art.config(scale, chosen) if art else apply_overrides(RunConfig(), chosen)
    cfg = apply_overrides(cfg, overrides or [])
    check_device(cfg.train.device)
    return cfg, art


def check_device(device: str) -> str:
    """``train.device`` names a device torch can use here."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--set train.device: {device!r} is not a device (cpu, cuda, "
                         "cuda:1, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--set train.device: {device} asked for, but torch sees no CUDA GPU "
                         "here (install a CUDA wheel: make install TORCH_SPEC=...)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--set train.device: {device} asked for, but there are only "
                         f"{torch.cuda.device_count()} GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--set train.device: mps asked for, but it is not available here")
    return device


def decide(tracker: MlflowTracker, experiment: str, cfg: RunConfig, root: Path, start, *,
           resume: bool = True, restart: bool = False, skip_finished: bool = True,
           exclusive: bool = True) -> grid.Decision:
    """Skip, resume or start ``cfg`` (rank 0 only). ``start(extra_tags)`` creates a new run.

    With ``exclusive`` the run is claimed in the store first (see :mod:`plstm_repro.grid`), so
    no two processes train one config at once. An unfinished run whose checkpoint cannot be
    read raises CheckpointError naming the file; ``restart`` starts afresh instead (the old
    runs are tagged as superseded, nothing is deleted).
    """
    h = config_hash(cfg)
    runs = tracker.find(experiment, h, (FINISHED, FAILED, KILLED, RUNNING)) if exclusive or \
        resume or skip_finished else []
    if skip_finished:
        done = [r for r in runs if r.info.status == FINISHED]
        if done:
            return grid.Decision("skip", done[0].info.run_id)
    if exclusive:
        live = [r for r in runs if grid.is_live(r)]
        if live:
            r = live[0]
            where = r.data.tags.get(grid.CLAIM_TAG, "?").rsplit(":", 1)[0]
            age = grid.heartbeat_age(r)
            return grid.Decision("busy", r.info.run_id,
                                 f"being trained by {where} (heartbeat {age:.0f} s ago; taken "
                                 f"as dead, and resumable, once it is {grid.STALE_S:.0f} s old: "
                                 f"in about {max(grid.STALE_S - age, 0):.0f} s)")
    old = grid.unfinished(runs)
    if not restart:
        diverged = [r for r in old if r.info.status == FAILED
                    and grid.FAILURE_TAG in r.data.tags]
        if diverged and exclusive:
            r = diverged[0]
            return grid.Decision("diverged", r.info.run_id,
                                 f"run {r.info.run_id[:8]} failed on a "
                                 f"{r.data.tags[grid.FAILURE_TAG]}; the same config fails the "
                                 "same way again (--restart retrains it anyway)")
        if resume:
            for r in old:
                if r.info.status == FAILED and grid.FAILURE_TAG in r.data.tags:
                    continue
                path = checkpoint_path(root, r.info.run_id)
                if not path.exists():
                    continue
                try:
                    load_checkpoint(path)
                except CheckpointError as e:
                    raise CheckpointError(
                        f"{e}. It belongs to the unfinished run {r.info.run_id[:8]}; "
                        "--restart trains this config afresh in a new run (nothing is "
                        "deleted)") from None
                if not exclusive:
                    return grid.Decision("resume", r.info.run_id)
                if grid.claim_resume(tracker, experiment, h, r):
                    return grid.Decision("resume", r.info.run_id)
                return grid.Decision("busy", r.info.run_id, "claimed by another process")
    if not exclusive:
        return grid.Decision("new", start({}))
    rid = grid.claim_new(tracker, experiment, h, start)
    if rid is None:
        return grid.Decision("busy", None, "claimed by another process")
    if restart:
        for r in old:
            tracker.set_tags(r.info.run_id, {grid.SUPERSEDED_TAG: rid})
    return grid.Decision("new", rid)


def run_one(cfg: RunConfig, artifact: Artifact | None, scale: str, tracker: MlflowTracker,
            root: Path, resume: bool = True, skip_finished: bool = True, progress: bool = True,
            echo=print, *, experiment: str | None = None, role: str = "child",
            parent_id: str | None = None, restart: bool = False, exclusive: bool = True,
            checkpoint_every_s: float | None = 600.0):
    """Train one config, or skip it when a finished run of the same resolved config exists;
    with ``resume`` an unfinished one (killed, failed) continues from its last checkpoint.
    Under torchrun rank 0 decides and the other ranks follow."""
    from .data import ensure_generated
    from .train import RunResult, dist_info, fit, start_run

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
    decision, error = None, None
    if rank == 0:  # only rank 0 talks to the tracker; the others follow its decision
        try:
            decision = decide(tracker, experiment, cfg, Path(root),
                              lambda extra: start_run(tracker, cfg, experiment, name,
                                                      {**tags, **extra}),
                              resume=resume, restart=restart, skip_finished=skip_finished,
                              exclusive=exclusive)
        except (UserError, ValueError, FileNotFoundError) as e:  # the other ranks learn it too
            decision, error = grid.Decision("error", None, str(e)), e
    if dist is not None:
        shared = [decision]
        dist.broadcast_object_list(shared, src=0)
        decision = shared[0]
    if decision.action == "error":
        raise error if error is not None else UserError(decision.note)
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
    beat = grid.Heartbeat(tracker, decision.run_id) if rank == 0 and exclusive else None
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
                      evaluations=evaluations)
    except BaseException as e:  # a claim must not stay RUNNING after its process gave up
        if rank == 0 and tracker.get_run(decision.run_id).info.status == RUNNING:
            tracker.end(decision.run_id, KILLED if isinstance(e, KeyboardInterrupt) else FAILED)
        raise
    echo(summary_line(experiment, var, cond, cfg.seed, res))
    return res


def summary_line(experiment, var, cond, seed, res) -> str:
    shown = [f"{k} {res.metrics[k]:.4g}" for k in ("test_acc", "test_mse", "train_acc",
                                                     "updates_per_neuron") if k in res.metrics]
    return (f"done  {experiment} | {var} | {cond} | seed {seed} | {' | '.join(shown)} | "
            f"{res.seconds:.0f} s | run {res.run_id[:8]}")


def train(dataset: str, model: str, scale: str = "quick", seed: int = 0,
          overrides: list[str] | None = None, resume: bool = False, root: Path = Path("runs"),
          progress: bool = True, echo=print, restart: bool = False,
          checkpoint_minutes: float = 10.0):
    """``plstm train``: one run, tracked in the experiment ``train-<dataset>`` (apart from the
    artifacts' grids). Without ``resume`` a new run always starts."""
    from .train import dist_info

    cfg, art = resolve_train_config(dataset, model, scale, seed, overrides)
    if dist_info()[1] != 0:  # torchrun: ranks > 0 neither track nor print
        tracker, echo = NullTracker(), (lambda s: None)
    else:
        tracker = MlflowTracker(root=root)
    result = run_one(cfg, art, scale, tracker, Path(root), resume=resume and not restart,
                     skip_finished=False, progress=progress, echo=echo,
                     experiment=f"train-{dataset}", role="adhoc", restart=restart,
                     exclusive=resume or restart,
                     checkpoint_every_s=_seconds(checkpoint_minutes))
    if result.status == "BUSY":  # nothing was trained: not a success
        raise UserError(f"train: run {result.run_id[:8] or '?'} of this config is "
                        f"{result.note}; nothing trained here")
    return result


def _seconds(minutes: float | None) -> float | None:
    if minutes is None or minutes <= 0:
        return None
    return 60.0 * minutes


def evaluate(ref: str, overrides: list[str] | None = None, root: Path = Path("runs")):
    """``plstm eval``: a checkpoint path, or a run id (a prefix is enough) of the local store."""
    from .train import evaluate_checkpoint

    path = Path(ref)
    if path.is_dir():
        raise ValueError(f"eval: {ref} is a folder; give a checkpoint file (last.pt) or a run id")
    if not path.is_file():
        if "/" in ref or "\\" in ref or path.suffix:
            raise FileNotFoundError(f"eval: no checkpoint file at {ref}")
        if not ref or not all(c in "0123456789abcdef" for c in ref.lower()):
            raise ValueError(f"eval: {ref!r} is neither a checkpoint file nor a run id (a run "
                             "id is hexadecimal, e.g. 3f2a91c0)")
        matches = sorted((Path(root) / "checkpoints").glob(f"{ref}*/last.pt"))
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise ValueError(f"eval: {ref!r} is not a checkpoint file, and {found} run ids in "
                             f"{Path(root) / 'checkpoints'} start with it")
        path = matches[0]
    return evaluate_checkpoint(path, overrides)


def artifacts_for(name: str) -> list[Artifact]:
    if name == "all":
        return list(ARTIFACTS.values())
    return [get_artifact(name)]


# --- reproduce: a grid over processes and machines --------------------------------------------

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
        time.sleep(grid.settle_s())
        found = tracker.runs(exp, filt)
        winner = min(found, key=grid.claim_key)
        if winner.info.run_id != mine:
            tracker.end(mine, KILLED)
            tracker.delete(mine)
        return winner.info.run_id
    return min(found, key=grid.claim_key).info.run_id


def grid_state(tracker: MlflowTracker, art: Artifact, scale: str) -> dict[str, str]:
    """config hash -> finished | live | diverged | unfinished | missing, for the whole grid."""
    plan = {config_hash(cfg): [] for _, _, _, cfg in art.runs(scale)}
    for r in tracker.runs(art.id):
        h = r.data.tags.get("config_hash")
        if h in plan and r.data.tags.get(ROLE_TAG) != "parent":
            plan[h].append(r)
    return grid.summarize(plan)


def run_point(art: Artifact, cfg: RunConfig, scale: str, tracker: MlflowTracker, root: Path,
              index: int, parent_id: str | None, restart: bool = False,
              checkpoint_every_s: float | None = 600.0, progress: bool = True,
              echo=print) -> grid.Outcome:
    """One grid point, its ending as an Outcome (user errors become outcomes; Ctrl-C and
    SIGTERM propagate after the run is checkpointed and marked KILLED)."""
    try:
        res = run_one(cfg, art, scale, tracker, Path(root), progress=progress, echo=echo,
                      parent_id=parent_id, restart=restart,
                      checkpoint_every_s=checkpoint_every_s)
    except NonFiniteLoss as e:
        echo(f"FAILED {art.id}: {e}")
        return grid.Outcome(index, "diverged", str(e), getattr(e, "run_id", None))
    except CheckpointError as e:
        return grid.Outcome(index, "unresumable", str(e))
    except (UserError, ValueError, FileNotFoundError) as e:
        echo(f"{art.id}: skipped: {e}")
        return grid.Outcome(index, "error", str(e))
    if res.skipped:
        status = "skipped" if res.status == FINISHED else res.status.lower()
        return grid.Outcome(index, status, res.note, res.run_id)
    return grid.Outcome(index, "finished", "", res.run_id)


def run_task(task: dict, echo=print) -> grid.Outcome:
    """A --jobs worker's grid point (plain data in, so it crosses processes)."""
    tracker = MlflowTracker(uri=task["uri"], root=task["root"])
    return run_point(get_artifact(task["artifact"]), from_dict(task["config"]), task["scale"],
                     tracker, Path(task["root"]), task["index"], task["parent"],
                     task["restart"], task["checkpoint_every_s"], progress=False, echo=echo)


def reproduce(name: str, scale: str = "quick", root: Path = Path("runs"), progress: bool = True,
              echo=print, *, jobs: int = 1, shard: str | None = None, restart: bool = False,
              checkpoint_minutes: float = 10.0, dry_run: bool = False,
              measure_steps: int = 3) -> list[Path]:
    """Every run an artifact needs (variants x conditions x seeds), skipping finished ones,
    resuming interrupted ones, then its plot and the parent run's summary. ``all`` does every
    artifact. ``shard`` ("i/N") keeps the i-th of N disjoint parts of the grid, ``jobs`` trains
    that many points at once; processes and machines sharing one store never train one config
    twice, and the last one to finish an artifact's grid draws it. ``dry_run`` prints the plan
    (every grid point this command would train, with its time estimated from ``measure_steps``
    timed steps, see :mod:`plstm_repro.plan`) and returns: nothing is trained or tracked."""
    from tqdm.auto import tqdm

    from .train import dist_info

    check_scale(scale)
    arts = artifacts_for(name)
    if name == "all":  # readings such as paper-text exist for some artifacts only
        arts = [a for a in arts if scale in a.scales]
    else:
        check_scale(scale, arts[0])
    part = grid.parse_shard(shard)
    if jobs < 1:
        raise ValueError(f"--jobs: expected a number >= 1, got {jobs}")
    _, rank, world = dist_info()
    if world > 1 and jobs > 1:
        raise ValueError("--jobs: under torchrun every process already works on one grid "
                         "point; leave --jobs out")
    say = echo if rank == 0 else (lambda s: None)
    plan = [(art, cfg) for art in arts for _, _, _, cfg in art.runs(scale)]
    mine = grid.select_shard(list(enumerate(plan)), part)
    if dry_run:  # before the tracker: a dry run creates no store, experiment or run
        if rank == 0:
            _print_plan(name, scale, [p for _, p in mine], len(plan), jobs, shard, root,
                        restart, measure_steps, progress, say)
        return []
    tracker = MlflowTracker(root=root) if rank == 0 else NullTracker()
    parents = {}
    if rank == 0:
        for art in {a.id: a for (_, (a, _)) in mine}.values():
            parents[art.id] = ensure_parent(tracker, art, scale)
            if set(grid_state(tracker, art, scale).values()) != {"finished"}:
                tracker.reopen(parents[art.id])  # work to do: RUNNING until the grid is done
    every = _seconds(checkpoint_minutes)
    outcomes: list[grid.Outcome] = []
    bar = tqdm(total=len(mine), desc=f"{name} ({scale})" + (f" shard {shard}" if shard else ""),
               disable=not progress or not mine or rank != 0, position=0, dynamic_ncols=True)
    line = bar.write if progress and rank == 0 else say  # lines above the bar, not through it
    t0 = time.time()
    interrupted, written = False, []
    try:
        if jobs > 1 and len(mine) > 1:
            tasks = [{"index": k, "artifact": art.id, "scale": scale, "config": to_dict(cfg),
                      "parent": parents.get(art.id), "restart": restart,
                      "checkpoint_every_s": every, "root": str(root), "uri": tracker.uri}
                     for k, (art, cfg) in mine]
            grid.run_pool(tasks, jobs, line, lambda o: (outcomes.append(o), bar.update(1)))
        else:
            broken: dict[str, str] = {}  # artifact -> first user error: skip its other points
            for k, (art, cfg) in mine:
                if art.id in broken:
                    outcomes.append(grid.Outcome(k, "error", broken[art.id]))
                    continue
                out = run_point(art, cfg, scale, tracker, Path(root), k, parents.get(art.id),
                                restart, every, progress, line)
                if out.status == "error":
                    broken[art.id] = out.message
                outcomes.append(out)
                bar.update(1)
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


def _print_plan(name, scale, points, n_grid, jobs, shard, root, restart, measure_steps,
                progress, say) -> None:
    """``reproduce --dry-run``: the points of this shard, each with its estimated time."""
    from .plan import estimate, format_plan, method_note

    part = f" (shard {shard} of a grid of {n_grid})" if shard else ""
    say(f"Dry run of `plstm reproduce {name} --scale {scale}`: {len(points)} grid point(s)"
        f"{part}; nothing is trained, no run is created. Measuring each config here first.")
    rows = estimate(points, jobs=jobs, root=Path(root), restart=restart,
                    measure_steps=measure_steps, progress=progress)
    device = points[0][1].train.device if points else "cpu"
    say(format_plan(rows, jobs, footer=method_note(jobs, measure_steps, device)))


def _problems(plan: list, outcomes: list[grid.Outcome]) -> list[str]:
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
            from .report import artifact_results, draw

            res = artifact_results(tracker, art, scale)
            paths = draw(art, res, root)
            written += paths
            _fill_parent(tracker, res, parent, paths)
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


def _fill_parent(tracker: MlflowTracker, res, parent: str, paths: list[Path]) -> None:
    """The parent run holds the summary table, the claims' verdicts and the figure."""
    art, scale = res.artifact, res.scale
    tracker.log_table(parent, res.summary, f"summary/{art.id}_{scale}.json")
    if res.verdicts:
        tracker.log_table(parent, res.claims_table(), f"claims/{art.id}_{scale}.json")
        tracker.set_tags(parent, {f"claim.{v.claim.id}": v.verdict for v in res.verdicts})
    for p in paths:
        if p.suffix in (".png", ".pdf", ".md", ".csv"):
            tracker.log_artifact(parent, p, "figure")


def figure_dir(root: Path, artifact_id: str, scale: str) -> Path:
    return Path(root) / "figures" / artifact_id / scale


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
    scales = [check_scale(scale, art)] if scale else ["paper", "quick", "smoke"]
    first_error = None
    for sc in scales:
        runs = tracker.runs(art.id, f"tags.scale = '{sc}'")
        runs = [r for r in runs if r.info.status == FINISHED
                and r.data.tags.get(ROLE_TAG) != "parent"]
        if not runs:
            continue
        try:
            return fn(art, tracker.history(runs), figure_dir(root, art.id, sc), sc)
        except ValueError as e:  # this scale lacks part of the grid: try the next one
            if scale:
                raise
            first_error = first_error or e
    if first_error is not None:
        raise first_error
    raise ValueError(f"plot {name}: no finished runs at scale {scale or 'any'} in "
                     f"{tracker.uri}; run `plstm reproduce {name} --scale {scale or 'quick'}`")


def preprocess(dataset: str, scale: str = "quick", overrides: list[str] | None = None,
               root: Path | None = None, progress: bool = True, echo=print,
               speakers: str = "") -> dict:
    """``plstm preprocess``: datasets from files are decoded once into their caches (a second
    run does nothing); generated ones are built as ``train`` builds them and summarised."""
    from . import data

    root = data.data_root(root, overrides)  # --root or --set data.root, one place
    if dataset in ("nmnist", "synthetic-nmnist", *data.GRID_FOLDERS):
        return data.preprocess_dataset(dataset, root, progress, echo, speakers)
    return dataset_summary(dataset, scale, [*(overrides or []), f"data.root={root}"])


def dataset_summary(dataset: str, scale: str = "quick", overrides: list[str] | None = None,
                    seed: int = 0) -> dict:
    """Both splits as ``train`` would build them: sizes, lengths, time span, class balance."""
    from .data import load_split

    cfg, _ = resolve_train_config(dataset, "lstm", scale, seed, overrides)
    out = {"dataset": dataset, "config": {k: v for k, v in vars(cfg.data).items()}}
    for split in ("train", "test"):
        d = load_split(cfg.data, split, seed)
        L = d.lengths.double()
        info = {"n": len(d), "features": d.input_size, "max_len": int(L.max()),
                "mean_len": round(float(L.mean()), 2), "task": d.task,
                "time_span": [float(d.t[:, 0].min()), float(d.t.max())],
                "time_unit": d.time_unit}
        if d.task == "classification":
            info["class_counts"] = d.y.bincount(minlength=d.num_outputs).tolist()
        out[split] = info
    return out


def serve_ui(root: Path = Path("runs"), port: int = 5000, echo=print,
             host: str = "127.0.0.1") -> int:
    """``plstm ui``: the MLflow UI on ``host:port`` for the local store, after printing the
    link of each experiment's runs table (model-training view, metric columns shown). A busy
    port is an EnvironmentProblem (exit code 1), found before anything starts."""
    import socket
    import subprocess
    import sys

    from .errors import EnvironmentProblem
    from .tracking import default_uri, runs_url

    if not 1 <= port <= 65535:
        raise ValueError(f"--port: expected 1-65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise EnvironmentProblem(
                f"ui: port {port} on {host} is in use ({e.strerror}); pick another: "
                f"plstm ui --port {port + 1} (or make ui PORT={port + 1})") from None
    uri = default_uri(root)
    tracker = MlflowTracker(uri=uri, root=root)
    base = f"http://{host}:{port}"
    if uri.startswith(("http://", "https://")):
        raise EnvironmentProblem(f"ui: MLFLOW_TRACKING_URI is a server ({uri}); open it in a "
                                 "browser instead, it serves the UI itself")
    echo(f"MLflow UI for {uri} on {base} (Ctrl-C stops it). Runs tables:")
    for exp in tracker.client.search_experiments():
        if exp.name == "Default":
            continue
        echo(f"  {exp.name:12s} {runs_url(base, tracker.experiment_id(exp.name))}")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    return subprocess.call(cmd)
