"""The ``plstm`` command line: each command parses options and calls a plain function.

Heavy modules (torch, mlflow, matplotlib) are imported inside the commands so ``--help`` is fast.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from pathlib import Path

import typer

from .data.registry import FILES, GENERATED, SYNTHETIC, choices, names
from .errors import Stopped, UserError

# plain help (no rich panels): no misleading <bool> beside flags, and it reads in any terminal
app = typer.Typer(
    help="Phased LSTM (Neil, Pfeiffer, Liu, NIPS 2016), reproduced: train, evaluate and "
         "regenerate the paper's figures, tracked in MLflow (local store in runs/).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

RUNS = typer.Option(Path("runs"), "--runs-dir", metavar="DIR",
                    help="Tracking store, checkpoints, figures.")
SETS = typer.Option([], "--set", metavar="KEY=VALUE",
                    help="Override a config value: section.key=value "
                         "(e.g. data.sampling=async, model.hidden_size=64).")
SCALE = typer.Option("quick", "--scale", metavar="SCALE",
                     help="smoke (seconds) | quick (CPU minutes) | paper (the authors' "
                          "settings) | paper-text (fig3d, fig4a: the paper's text only).")
DEVICE = typer.Option(None, "--device", metavar="DEV",
                      help="Where to compute: cpu, cuda, cuda:1 (under torchrun, cuda is each "
                           "process's own GPU). How a run is made, not what it is: a run on "
                           "another device counts for the same grid point.")
QUIET = typer.Option(False, "--no-progress", help="No progress bars.")
SPEAKERS = typer.Option("", "--speakers", help="GRID only: speakers, e.g. 1-34 or 1-4,7 "
                                               "(default: all; 21 has no video).")
RESTART = typer.Option(False, "--restart",
                       help="Train unfinished configs afresh in new runs instead of resuming "
                            "them (their old runs are kept, tagged as superseded).")
CHECKPOINT = typer.Option(10.0, "--checkpoint-minutes", metavar="MIN",
                          help="Also checkpoint inside an epoch every MIN minutes (0: only at "
                               "the end of each epoch).")


def _tracking_errors() -> tuple:
    """MLflow's exception class, only if mlflow is already imported (--help stays light)."""
    mod = sys.modules.get("mlflow.exceptions")
    return (mod.MlflowException,) if mod else ()


def _stop(signum, frame):
    raise Stopped(signum)


def friendly(fn):
    """User errors -> one clear message on stderr and a non-zero exit, not a traceback.
    SIGTERM (what a scheduler sends) is handled like Ctrl-C."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _stop) if main else None
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(e.exit_code) from None
        # missing or misplaced files; a plain ValueError is a bug (user errors are UserError)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(2) from None
        except OSError as e:  # a folder that cannot be written, a disk that is full, ...
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            name = "SIGTERM" if signum == 15 else "Ctrl-C"
            trains = fn.__name__ in ("train", "reproduce")  # only these have runs to resume
            typer.secho(f"interrupted ({name}): " + (
                "the run is checkpointed and marked KILLED; --resume (train) or the same "
                "reproduce command continues it" if trains else
                "nothing partial is kept under a final name; run the same command again"),
                fg="yellow", err=True)
            raise typer.Exit(128 + signum) from None
        except Exception as e:
            if isinstance(e, _tracking_errors()):
                first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                typer.secho(f"error: tracking store: {first}", fg="red", err=True)
                raise typer.Exit(1) from None
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    return wrapper


def _device_set(device: str | None) -> list[str]:
    """``--device`` as the execution override it is, checked under its own name."""
    if not device:
        return []
    from .config_checks import check_device

    return [f"train.device={check_device(device, '--device')}"]


@app.command()
@friendly
def train(
    dataset: str = typer.Argument(..., help=choices()),
    model: str = typer.Option("phased", "--model", "-m",
                              help="phased (phased_lstm) | lstm | bn (bn_lstm) | phased_gru | "
                                   "cnn (event data)"),
    scale: str = SCALE,
    seed: int = typer.Option(0, help="Seed of the data, the initialisation and the shuffling."),
    sets: list[str] = SETS,
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the last killed/failed run of this config."),
    restart: bool = RESTART,
    checkpoint_minutes: float = CHECKPOINT,
    device: str = DEVICE,
    runs_dir: Path = RUNS,
    no_progress: bool = QUIET,
):
    """Train one model on one dataset, tracked in MLflow (experiment train-DATASET).

    Example: plstm train sines --model phased --set data.sampling=async
    """
    from .runner import train as run

    sets = [*sets, *_device_set(device)]
    run(dataset, model, scale, seed, sets, resume, runs_dir, progress=not no_progress,
        echo=typer.echo, restart=restart, checkpoint_minutes=checkpoint_minutes)


@app.command("eval")
@friendly
def eval_(
    run: str = typer.Argument(..., help="A run id (or its prefix) or a checkpoint file."),
    sets: list[str] = SETS,
    device: str = DEVICE,
    runs_dir: Path = RUNS,
):
    """Evaluate a trained model, also under another condition than it was trained on.

    Example: plstm eval 3f2a91c0 --set data.sampling=highres
    """
    from .runner import evaluate

    sets = [*sets, *_device_set(device)]
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
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="K",
                             help="Train K grid points at once on this machine (cores / K "
                                  "threads each)."),
    shard: str = typer.Option(None, "--shard", metavar="I/N",
                              help="Run only the I-th of N disjoint parts of the grid (one per "
                                   "machine, all against one tracking server)."),
    restart: bool = RESTART,
    checkpoint_minutes: float = CHECKPOINT,
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Print the plan and train nothing: every grid point with "
                                      "its time estimated from a few steps timed here, per "
                                      "artifact and in total (serial and with --jobs)."),
    device: str = DEVICE,
    sets: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                   help="Execution settings only: data.root, "
                                        "train.eval_batch_size, train.log_every, train.device."),
    runs_dir: Path = RUNS,
    no_progress: bool = QUIET,
):
    """Run every run an artifact needs (skipping finished ones, resuming interrupted ones),
    then plot it and store its summary in the artifact's parent run.

    Example: plstm reproduce fig3d --scale quick --jobs 2   (add --dry-run to see the plan)
    """
    from .sweep.reproduce import reproduce as run

    execution = [*sets, *_device_set(device)]
    for p in run(artifact, scale, runs_dir, progress=not no_progress, echo=typer.echo,
                 jobs=jobs, shard=shard, restart=restart,
                 checkpoint_minutes=checkpoint_minutes, dry_run=dry_run, execution=execution):
        typer.echo(f"wrote {p}")


@app.command()
@friendly
def report(
    runs_dir: Path = RUNS,
    out: Path = typer.Option(None, "--out", metavar="DIR",
                             help="Where report.html and report.md go (default: "
                                  "RUNS_DIR/report)."),
):
    """Write the reproduction report: every artifact's figure, our numbers beside the paper's,
    the paper's claims with their verdicts, and the runs behind them (HTML and markdown).

    Example: plstm report && xdg-open runs/report/report.html
    """
    from .results.report import write_report

    html_path, md_path = write_report(runs_dir, out)
    typer.echo(f"wrote {html_path}")
    typer.echo(f"wrote {md_path}")


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
    from .results.figures import plot as run

    for p in run(artifact, scale, runs_dir):
        typer.echo(f"wrote {p}")


@app.command()
@friendly
def download(
    dataset: str = typer.Argument(..., help=f"{choices(FILES, SYNTHETIC)} "
                                            f"({', '.join(names(GENERATED))} need none)"),
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
    dataset: str = typer.Argument(..., help=f"{choices(cached=True)} (decoded once into a "
                                            f"cache) | {choices(cached=False)}"),
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
    """Start the MLflow UI on 127.0.0.1 against the project's store and print the link of each
    experiment's runs table.

    Example: plstm ui --port 5001
    """
    from .runner import serve_ui

    raise typer.Exit(serve_ui(runs_dir, port, echo=typer.echo))


@app.command()
@friendly
def bench(
    quick: bool = typer.Option(False, "--quick", help="Tiny shapes: a smoke test in seconds."),
    out_dir: Path = typer.Option(Path("runs/bench"), "--out", help="JSON and chart go here."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | cuda:N | auto (nn.LSTM is "
                                                       "cuDNN's on CUDA)."),
    compiled: bool = typer.Option(False, "--compiled", help="Also time the compiled (CUDA) "
                                                            "recurrence on the CPU."),
    shape: list[str] = typer.Option([], "--shape", help="Only these shapes (repeatable), e.g. "
                                                        "N-MNIST, 'GRID merged'."),
    repeats: int = typer.Option(5, "--repeats", help="Timed calls per method and shape."),
):
    """Time nn.LSTM against our Phased LSTM and BN-LSTM paths (medians, ratios in the same run).

    Example: plstm bench --quick; plstm bench --device cuda
    """
    from .bench import pick_shapes, run_bench

    run_bench(shapes=pick_shapes(shape) if shape else None, repeats=repeats, out_dir=out_dir,
              quick=quick, device=device, compiled=compiled or None)


def main():  # console entry point
    app()


if __name__ == "__main__":
    main()
