"""Plain functions behind the CLI: train one run, evaluate, reproduce and plot an artifact."""

from __future__ import annotations

import time
from pathlib import Path

from .config import RunConfig, apply_overrides, config_hash
from .data import check_dataset
from .errors import IncompleteReproduction
from .experiments import ARTIFACTS, Artifact, Cell, check_scale, default_artifact, get_artifact
from .models import resolve_model_name
from .tracking import FAILED, FINISHED, KILLED, RUNNING, MlflowTracker, NullTracker, git_commit

RESUMABLE = (KILLED, FAILED, RUNNING)


def _matches(cell: Cell, cfg: RunConfig) -> bool:
    probe = apply_overrides(cfg, cell.overrides)
    return probe == cfg


def labels_for(artifact: Artifact | None, cfg: RunConfig) -> tuple[str, str]:
    """The artifact's variant and condition labels that describe ``cfg`` (for plotting)."""
    if artifact is None:
        return cfg.model.name, cfg.data.sampling
    var = next((v.label for v in artifact.variants if _matches(v, cfg)), cfg.model.name)
    cond = next((c.label for c in artifact.conditions if _matches(c, cfg)), "custom")
    return var, cond


def resolve_train_config(dataset: str, model: str, scale: str = "quick", seed: int = 0,
                         overrides: list[str] | None = None) -> tuple[RunConfig, Artifact | None]:
    """The config of ``plstm train DATASET --model MODEL``: the dataset's artifact settings at
    ``scale``, then the model, the seed and the user's ``--set`` overrides (in that order)."""
    check_dataset(dataset)
    check_scale(scale)
    model = resolve_model_name(model)
    art = default_artifact(dataset)
    chosen = {"data.name": dataset, "model.name": model, "seed": seed}
    cfg = art.config(scale, chosen) if art else apply_overrides(RunConfig(), chosen)
    return apply_overrides(cfg, overrides or []), art


def run_one(cfg: RunConfig, artifact: Artifact | None, scale: str, tracker: MlflowTracker,
            root: Path, resume: bool = True, skip_finished: bool = True, progress: bool = True,
            echo=print):
    """Train one config, or skip it when a finished run of the same resolved config exists;
    with ``resume`` an unfinished one (killed, failed) continues from its last checkpoint."""
    from .data import ensure_generated
    from .train import RunResult, checkpoint_path, dist_info, fit

    experiment = artifact.id if artifact else f"train-{cfg.data.name}"
    h = config_hash(cfg)
    var, cond = labels_for(artifact, cfg)
    dist, rank, _ = dist_info()
    done, resume_id = None, None
    if rank == 0:  # only rank 0 talks to the tracker; the others follow its decision
        if skip_finished:
            found = tracker.find(experiment, h, (FINISHED,))
            done = (found[0].info.run_id, dict(found[0].data.metrics)) if found else None
        if resume and not done:
            for r in tracker.find(experiment, h, RESUMABLE):
                if checkpoint_path(root, r.info.run_id).exists():
                    resume_id = r.info.run_id
                    echo(f"resume run {resume_id[:8]} from its last checkpoint")
                    break
    if dist is not None:
        shared = [done, resume_id]
        dist.broadcast_object_list(shared, src=0)
        done, resume_id = shared
    if done:
        echo(f"skip  {experiment} | {var} | {cond} | seed {cfg.seed}: finished as run "
             f"{done[0][:8]}")
        return RunResult(done[0], FINISHED, done[1], None, 0.0, skipped=True)
    if rank == 0:
        ensure_generated(cfg.data, progress, echo)
    if dist is not None:
        dist.barrier()
    tags = {"artifact": artifact.id if artifact else "", "scale": scale, "variant": var,
            "condition": cond, "git_commit": git_commit(),
            "paper_ref": artifact.paper_ref if artifact else ""}
    name = f"{var} | {cond} | seed {cfg.seed}"
    evaluations = {c.label: c.overrides for c in artifact.evaluations} if artifact else None
    res = fit(cfg, tracker, experiment=experiment, run_name=name, tags=tags, root=root,
              resume_run_id=resume_id, progress=progress, evaluations=evaluations)
    echo(summary_line(experiment, var, cond, cfg.seed, res))
    return res


def summary_line(experiment, var, cond, seed, res) -> str:
    shown = [f"{k} {res.metrics[k]:.4g}" for k in ("test_acc", "test_mse", "train_acc",
                                                     "updates_per_neuron") if k in res.metrics]
    return (f"done  {experiment} | {var} | {cond} | seed {seed} | {' | '.join(shown)} | "
            f"{res.seconds:.0f} s | run {res.run_id[:8]}")


def train(dataset: str, model: str, scale: str = "quick", seed: int = 0,
          overrides: list[str] | None = None, resume: bool = False, root: Path = Path("runs"),
          progress: bool = True, echo=print):
    """``plstm train``: one run, tracked. Without ``resume`` a new run always starts."""
    from .train import dist_info

    cfg, art = resolve_train_config(dataset, model, scale, seed, overrides)
    if dist_info()[1] != 0:  # torchrun: ranks > 0 neither track nor print
        tracker, echo = NullTracker(), (lambda s: None)
    else:
        tracker = MlflowTracker(root=root)
    return run_one(cfg, art, scale, tracker, Path(root), resume=resume, skip_finished=False,
                   progress=progress, echo=echo)


def evaluate(ref: str, overrides: list[str] | None = None, root: Path = Path("runs")):
    """``plstm eval``: a checkpoint path, or a run id (a prefix is enough) of the local store."""
    from .train import evaluate_checkpoint

    path = Path(ref)
    if not path.is_file():
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


def reproduce(name: str, scale: str = "quick", root: Path = Path("runs"), progress: bool = True,
              echo=print) -> list[Path]:
    """Every run an artifact needs (variants x conditions x seeds), skipping finished ones,
    resuming interrupted ones, then its plot. ``all`` does every artifact in turn."""
    from tqdm.auto import tqdm

    check_scale(scale)
    arts = artifacts_for(name)
    tracker = MlflowTracker(root=root)
    written: list[Path] = []
    failures = []
    for art in arts:
        plan = art.runs(scale)
        bar = tqdm(total=len(plan), desc=f"{art.id} ({scale})", disable=not progress or not plan,
                   position=0, dynamic_ncols=True)
        t0 = time.time()
        say = bar.write if progress else echo  # lines above the bar, not through it
        try:
            for _var, _cond, _seed, cfg in plan:
                run_one(cfg, art, scale, tracker, Path(root), progress=progress, echo=say)
                bar.update(1)
            bar.close()
            written += plot(art.id, scale, root, tracker=tracker)
            echo(f"{art.id}: {len(plan)} runs, {time.time() - t0:.0f} s; figure in "
                 f"{figure_dir(root, art.id, scale)}")
        except (FileNotFoundError, ValueError) as e:
            bar.close()
            if len(arts) == 1:
                raise
            failures.append(f"{art.id}: {e}")
            echo(f"{art.id}: skipped: {e}")
    if failures:
        raise IncompleteReproduction("some artifacts could not be reproduced (the others "
                                     "were):\n" + "\n".join(failures))
    return written


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
    scales = [check_scale(scale)] if scale else ["paper", "quick", "smoke"]
    first_error = None
    for sc in scales:
        runs = tracker.runs(art.id, f"tags.scale = '{sc}'")
        runs = [r for r in runs if r.info.status == FINISHED]
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

    if dataset in ("nmnist", "synthetic-nmnist", *data.GRID_FOLDERS):
        return data.preprocess_dataset(dataset, root or Path("data"), progress, echo, speakers)
    if root is not None:
        overrides = [*(overrides or []), f"data.root={root}"]
    return dataset_summary(dataset, scale, overrides)


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
