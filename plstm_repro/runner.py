"""Plain functions behind the CLI's single-run commands: train one run, evaluate a checkpoint,
prepare a dataset, serve the UI. The grid of runs is :mod:`plstm_repro.sweep`; which runs count
is :mod:`plstm_repro.results`; figures from tracked runs are :mod:`plstm_repro.results.figures`."""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, apply_overrides
from .config_checks import check_device
from .data import check_dataset
from .data.registry import dataset_spec
from .errors import UsageError
from .experiments import Artifact, check_scale, default_artifact, variant_overrides
from .layout import Layout
from .models import resolve_model_name
from .sweep.lifecycle import run_one
from .sweep.reproduce import seconds_or_none
from .tracking import MlflowTracker, NullTracker


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
                     checkpoint_every_s=seconds_or_none(checkpoint_minutes))
    if result.status == "BUSY":  # nothing was trained: not a success
        raise UsageError(f"train: run {result.run_id[:8] or '?'} of this config is "
                         f"{result.note}; nothing trained here")
    return result


def evaluate(ref: str, overrides: list[str] | None = None, root: Path = Path("runs")):
    """``plstm eval``: a checkpoint path, or a run id (a prefix is enough) of the local store."""
    from .train import evaluate_checkpoint

    path = Path(ref)
    if path.is_dir():
        raise UsageError(f"eval: {ref} is a folder; give a checkpoint file (last.pt) or a run id")
    if not path.is_file():
        if "/" in ref or "\\" in ref or path.suffix:
            raise FileNotFoundError(f"eval: no checkpoint file at {ref}")
        if not ref or not all(c in "0123456789abcdef" for c in ref.lower()):
            raise UsageError(f"eval: {ref!r} is neither a checkpoint file nor a run id (a run "
                             "id is hexadecimal, e.g. 3f2a91c0)")
        matches = sorted(Layout(Path(root)).checkpoints().glob(f"{ref}*/last.pt"))
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise UsageError(f"eval: {ref!r} is not a checkpoint file, and {found} run ids in "
                             f"{Layout(Path(root)).checkpoints()} start with it")
        path = matches[0]
    return evaluate_checkpoint(path, overrides)


def preprocess(dataset: str, scale: str = "quick", overrides: list[str] | None = None,
               root: Path | None = None, progress: bool = True, echo=print,
               speakers: str = "") -> dict:
    """``plstm preprocess``: datasets from files are decoded once into their caches (a second
    run does nothing); generated ones are built as ``train`` builds them and summarised."""
    from . import data

    root = data.data_root(root, overrides)  # --root or --set data.root, one place
    if dataset_spec(dataset).cached:
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
        raise UsageError(f"--port: expected 1-65535, got {port}")
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
