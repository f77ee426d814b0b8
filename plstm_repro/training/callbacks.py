"""What ``fit`` tells the outside world when a run ends, kept out of the loop so that training
imports no plotting."""

from __future__ import annotations

from pathlib import Path


class RunCurves:
    """Draw the finished run's own curves (loss, accuracy or MSE over epochs) beside its
    checkpoint and log the figure with the run."""

    def on_finish(self, tracker, run_id: str, epochs: list[dict], folder: Path,
                  label: str) -> None:
        if not epochs:
            return
        from ..results.plots import plot_run_curves

        tracker.log_artifact(run_id, plot_run_curves(epochs, folder, label), "figures")
