"""Experiment tracking: MLflow through an explicit client (no global active run), or nothing.

By default the store is a local SQLite file ``runs/mlflow.db`` with artifacts under
``runs/mlartifacts`` (no server needed); ``MLFLOW_TRACKING_URI`` (read when a tracker is made,
never at import) points it anywhere else, a remote server included.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

import pandas as pd

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
HISTORY_COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]


class Tracker(Protocol):
    def start(self, experiment: str, run_name: str, params: dict, tags: dict) -> str: ...
    def reopen(self, run_id: str) -> None: ...
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, run_id: str, path: Path, subdir: str | None = None) -> None: ...
    def end(self, run_id: str, status: str) -> None: ...


class NullTracker:
    """Logs nothing (non-zero ranks of a multi-process run, library use)."""

    def start(self, experiment, run_name, params, tags):
        return "untracked"

    def reopen(self, run_id):
        pass

    def log_metrics(self, run_id, metrics, step):
        pass

    def log_artifact(self, run_id, path, subdir=None):
        pass

    def end(self, run_id, status):
        pass


def default_uri(root: Path | str = "runs") -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class MlflowTracker:
    """MLflow via ``MlflowClient``; one experiment per artifact (or per dataset for ad-hoc runs)."""

    def __init__(self, uri: str | None = None, root: Path | str = "runs"):
        import logging

        from mlflow.tracking import MlflowClient

        # alembic's INFO lines on every fresh SQLite store drown the progress bars
        for name in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.root = Path(root)
        self.uri = uri or default_uri(root)
        self.client = MlflowClient(tracking_uri=self.uri)

    def experiment_id(self, name: str, create: bool = True) -> str | None:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        if not create:
            return None
        location = None
        if self.uri.startswith("sqlite:"):  # keep artifacts beside the local store, not ./mlruns
            location = (self.root.resolve() / "mlartifacts").as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def start(self, experiment, run_name, params, tags):
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        rid = run.info.run_id
        from mlflow.entities import Param
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(rid, params=items[i:i + 100])
        return rid

    def reopen(self, run_id):
        self.client.update_run(run_id, status=RUNNING)

    def log_metrics(self, run_id, metrics, step):
        import time

        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, int(step))
                                               for k, v in metrics.items()])

    def log_artifact(self, run_id, path, subdir=None):
        self.client.log_artifact(run_id, str(path), subdir)

    def end(self, run_id, status):
        self.client.set_terminated(run_id, status=status)

    # --- queries -------------------------------------------------------------------------
    def runs(self, experiment: str, filter_string: str = "") -> list:
        eid = self.experiment_id(experiment, create=False)
        if eid is None:
            return []
        return self.client.search_runs([eid], filter_string=filter_string, max_results=5000)

    def find(self, experiment: str, config_hash: str, statuses: tuple[str, ...]) -> list:
        """Runs of this resolved config in these statuses, newest first."""
        found = self.runs(experiment, f"tags.config_hash = '{config_hash}'")
        found = [r for r in found if r.info.status in statuses]
        return sorted(found, key=lambda r: r.info.start_time, reverse=True)

    def get_run(self, run_id: str):
        return self.client.get_run(run_id)

    def history(self, runs: list, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Long table of every logged value: HISTORY_COLUMNS, one row per (run, metric, step)."""
        rows = []
        for r in runs:
            tags = r.data.tags
            names = metrics or tuple(r.data.metrics)
            for m in names:
                if m not in r.data.metrics:
                    continue
                for h in self.client.get_metric_history(r.info.run_id, m):
                    rows.append((r.info.run_id, tags.get("variant", ""), tags.get("condition", ""),
                                 int(tags.get("seed", 0)), m, h.step, h.value))
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
