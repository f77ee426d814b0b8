"""What a tracker is (the protocol ``fit`` logs through), the one that logs nothing, and the
names of the statuses and tags every part of the package reads."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
HISTORY_COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]
PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "plstm.role"  # parent | child | adhoc
HEARTBEAT_TAG = "plstm.heartbeat"  # unix seconds, refreshed while a process trains the run
VIEW_ID = "plstm"
VIEW_COLUMNS = (["attributes.`Dataset`", "attributes.`Duration`",
                 "metrics.`test_acc`", "metrics.`test_mse`", "metrics.`train_acc`",
                 "metrics.`train_loss`", "metrics.`updates_per_neuron`",
                 "metrics.`epoch_time_s`"]
                + [f"tags.`{t}`" for t in ("scale", "variant", "condition", "seed")]
                + ["params.`model.name`", "params.`data.sampling`", "params.`train.epochs`"])
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


class Tracker(Protocol):
    def start(self, experiment: str, run_name: str, params: dict, tags: dict) -> str: ...
    def reopen(self, run_id: str) -> None: ...
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None: ...
    def log_inputs(self, run_id: str, datasets: list[dict]) -> None: ...
    def log_artifact(self, run_id: str, path: Path, subdir: str | None = None) -> None: ...
    def set_tags(self, run_id: str, tags: dict) -> None: ...
    def end(self, run_id: str, status: str) -> None: ...


class NullTracker:
    """Logs nothing (non-zero ranks of a multi-process run, library use)."""

    def start(self, experiment, run_name, params, tags):
        return "untracked"

    def reopen(self, run_id):
        pass

    def log_metrics(self, run_id, metrics, step):
        pass

    def log_inputs(self, run_id, datasets):
        pass

    def log_artifact(self, run_id, path, subdir=None):
        pass

    def set_tags(self, run_id, tags):
        pass

    def end(self, run_id, status):
        pass
