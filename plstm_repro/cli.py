"""The ``plstm`` command line: each command parses options and calls a plain function.

Heavy modules (torch, mlflow, matplotlib) are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import typer

from .errors import IncompleteReproduction

app = typer.Typer(
    help="Phased LSTM (Neil, Pfeiffer, Liu, NIPS 2016), reproduced: train, evaluate and "
         "regenerate the paper's figures, tracked in MLflow (local store in runs/).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

RUNS = typer.Option(Path("runs"), "--runs-dir", help="Tracking store, checkpoints, figures.")
SETS = typer.Option([], "--set", help="Override a config value: section.key=value "
                                      "(e.g. data.sampling=async, model.hidden_size=64).")
SCALE = typer.Option("quick", "--scale", help="smoke (seconds) | quick (CPU minutes) | "
                                              "paper (the authors' settings).")
QUIET = typer.Option(False, "--no-progress", help="No progress bars.")
SPEAKERS = typer.Option("", "--speakers", help="GRID only: speakers, e.g. 1-34 or 1-4,7 "
                                               "(default: all; 21 has no video).")


def friendly(fn):
    """Bad input -> one clear line on stderr and exit code 2, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(2) from None
        except RuntimeError as e:
            from .data.download import DownloadError
            if not isinstance(e, DownloadError):
                raise
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(1) from None
        except IncompleteReproduction as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("interrupted: the run is marked KILLED; --resume continues it",
                        fg="yellow", err=True)
            raise typer.Exit(130) from None
    return wrapper


@app.command()
@friendly
def train(
    dataset: str = typer.Argument(..., help="sines | sines2 | adding | mnist | digits | nmnist "
                                            "| synthetic-nmnist | grid | synthetic-grid"),
    model: str = typer.Option("phased", "--model", "-m",
                              help="phased (phased_lstm) | lstm | bn (bn_lstm) | phased_gru | "
                                   "cnn (event data)"),
    scale: str = SCALE,
    seed: int = typer.Option(0, help="Seed of the data, the initialisation and the shuffling."),
    sets: list[str] = SETS,
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the last killed/failed run of this config."),
    runs_dir: Path = RUNS,
    no_progress: bool = QUIET,
):
    """Train one model on one dataset, tracked in MLflow.

    Example: plstm train sines --model phased --set data.sampling=async
    """
    from .runner import train as run

    run(dataset, model, scale, seed, sets, resume, runs_dir, progress=not no_progress,
        echo=typer.echo)


@app.command("eval")
@friendly
def eval_(
    run: str = typer.Argument(..., help="A run id (or its prefix) or a checkpoint file."),
    sets: list[str] = SETS,
    runs_dir: Path = RUNS,
):
    """Evaluate a trained model, also under another condition than it was trained on.

    Example: plstm eval 3f2a91c0 --set data.sampling=highres
    """
    from .runner import evaluate

    cfg, res = evaluate(run, sets, runs_dir)
    typer.echo(f"{cfg.data.name} ({cfg.data.sampling}) {cfg.model.name}, seed {cfg.seed}:")
    typer.echo(json.dumps({k: round(v, 6) for k, v in res.items()}, indent=2))


@app.command()
@friendly
def reproduce(
    artifact: str = typer.Argument(..., help="fig3d | fig4a | fig4b | fig2b | table1 | fig6c "
                                             "| nmnist-synthetic | fig6c-synthetic | mnist | "
                                             "digits | all"),
    scale: str = SCALE,
    runs_dir: Path = RUNS,
    no_progress: bool = QUIET,
):
    """Run every run an artifact needs (skipping finished ones), then plot it.

    Example: plstm reproduce fig3d --scale quick
    """
    from .runner import reproduce as run

    for p in run(artifact, scale, runs_dir, progress=not no_progress, echo=typer.echo):
        typer.echo(f"wrote {p}")


@app.command()
@friendly
def plot(
    artifact: str = typer.Argument(..., help="fig3d | fig4a | fig4b | fig2b | table1 | fig6c "
                                             "| nmnist-synthetic | fig6c-synthetic | mnist | "
                                             "digits"),
    scale: str = typer.Option(None, "--scale",
                              help="Default: the largest scale whose runs cover the figure."),
    runs_dir: Path = RUNS,
):
    """Draw a figure or table from tracked runs only (never trains).

    Example: plstm plot fig3d --scale quick
    """
    from .runner import plot as run

    for p in run(artifact, scale, runs_dir):
        typer.echo(f"wrote {p}")


@app.command()
@friendly
def download(
    dataset: str = typer.Argument(..., help="mnist | nmnist | synthetic-nmnist | grid | "
                                            "synthetic-grid (sines, sines2, adding, digits "
                                            "need none)"),
    from_dir: Path = typer.Option(None, "--from", help="Copy the files from this folder "
                                                      "instead (checksums are checked)."),
    root: Path = typer.Option(Path("data"), "--root", help="Where datasets live."),
    speakers: str = SPEAKERS,
    no_progress: bool = QUIET,
):
    """Download a dataset (resumable, checksummed), or place it from a local folder.

    Example: plstm download nmnist --from ~/Downloads/nmnist
    """
    from .data import download_dataset as run

    typer.echo(run(dataset, root, from_dir, progress=not no_progress, echo=typer.echo,
                   speakers=speakers))


@app.command()
@friendly
def preprocess(
    dataset: str = typer.Argument(..., help="nmnist | synthetic-nmnist | grid | synthetic-grid "
                                            "(decoded once into a cache) | sines | sines2 | "
                                            "adding | mnist | digits"),
    scale: str = SCALE,
    sets: list[str] = SETS,
    root: Path = typer.Option(None, "--root", help="Where datasets live (default: data)."),
    speakers: str = SPEAKERS,
    no_progress: bool = QUIET,
):
    """Decode a dataset's files once into a memory-mapped cache (N-MNIST), or build the splits
    of a generated dataset as training will see them; print their summary.

    Example: plstm preprocess nmnist
    """
    from .runner import preprocess as run

    res = run(dataset, scale, sets, root, progress=not no_progress, echo=typer.echo,
              speakers=speakers)
    typer.echo(json.dumps(res, indent=2, default=str))


@app.command()
@friendly
def ui(
    runs_dir: Path = RUNS,
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
):
    """Start the MLflow UI on 127.0.0.1 against the project's store.

    Example: plstm ui --port 5001
    """
    import subprocess

    from .tracking import default_uri

    uri = default_uri(runs_dir)
    typer.echo(f"MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C stops it)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
@friendly
def bench(
    quick: bool = typer.Option(False, "--quick", help="Tiny shapes: a smoke test in seconds."),
    out_dir: Path = typer.Option(Path("runs/bench"), "--out", help="JSON and chart go here."),
):
    """Time nn.LSTM against our Phased LSTM paths (medians, ratios in the same run).

    Example: plstm bench --quick
    """
    from .bench import run_bench

    run_bench(out_dir=out_dir, quick=quick)


def main():  # console entry point
    app()


if __name__ == "__main__":
    main()
