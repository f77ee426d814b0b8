"""MLflow through an explicit ``MlflowClient`` (no global active run)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pandas as pd

from .base import EXPERIMENT_TAGS, HEARTBEAT_TAG, HISTORY_COLUMNS, RUNNING, VIEW_ID
from .describe import VIEWS
from .store import (
    GuardedClient,
    TrackingStoreError,
    check_server,
    default_uri,
    end_in_place,
    guarded,
    redact,
    sqlite_path,
    store_lock,
)


class MlflowTracker:
    """MLflow via ``MlflowClient``; one experiment per artifact (and per dataset for ad-hoc
    runs), each prepared for the UI the first time this tracker touches it."""

    def __init__(self, uri: str | None = None, root: Path | str = "runs"):
        import logging

        from mlflow.tracking import MlflowClient

        # alembic's INFO lines on every fresh SQLite store drown the progress bars
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # ... and so do MLflow's, with a traceback logged for each database error that it
        # raises again anyway (and that guarded() turns into one line)
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        self.root = Path(root)
        self.uri = uri or default_uri(root)
        if self.uri.startswith(("http://", "https://")):
            check_server(self.uri)
        db = sqlite_path(self.uri)
        self.store = str(db) if db is not None else redact(self.uri)
        with store_lock(db) if db is not None else contextlib.nullcontext():
            # the first client creates and migrates the store: one process at a time
            client = guarded(self.store, lambda: MlflowClient(tracking_uri=self.uri))
        artifacts = str(self.root.resolve() / "mlartifacts") if db is not None else self.store
        self.client = GuardedClient(client, self.store, artifacts)
        self._prepared: set[str] = set()

    def experiment_id(self, name: str, create: bool = True, description: str = "") -> str | None:
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is None and create:
            location = None
            if self.uri.startswith("sqlite:"):  # artifacts beside the local store, not ./mlruns
                location = (self.root.resolve() / "mlartifacts").as_uri()
            try:
                self.client.create_experiment(name, artifact_location=location)
            except MlflowException:  # another process created it first
                pass
            exp = self.client.get_experiment_by_name(name)
        if exp is None:
            return None
        if name not in self._prepared:
            self._prepare(exp, description)
            self._prepared.add(name)
        return exp.experiment_id

    def _prepare(self, exp, description: str) -> None:
        """Tag the experiment as model training and store the runs-table view (only where
        missing, so a user's own changes in the UI stay)."""
        want = dict(EXPERIMENT_TAGS)
        if description:
            want["mlflow.note.content"] = description
        now = int(time.time() * 1000)
        for vid, (name, state) in VIEWS.items():
            want[f"mlflow.sharedViewState.{vid}"] = json.dumps(
                {"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)})
        from mlflow.exceptions import MlflowException

        for k, v in want.items():
            if k not in exp.tags:
                try:
                    self.client.set_experiment_tag(exp.experiment_id, k, v)
                except MlflowException:  # another process set it in the same moment
                    if k not in self.client.get_experiment(exp.experiment_id).tags:
                        raise

    def expand_in_view(self, experiment: str, run_id: str) -> None:
        """Open ``run_id`` (a parent) in the experiment's saved view, so its children show."""
        eid = self.experiment_id(experiment)
        key = f"mlflow.sharedViewState.{VIEW_ID}"
        raw = self.client.get_experiment(eid).tags.get(key)
        try:
            view = json.loads(raw)
            state = json.loads(view["state"])
        except (TypeError, ValueError, KeyError):  # replaced by a view we do not know
            return
        state.setdefault("runsExpanded", {})[run_id] = True
        view["state"] = json.dumps(state)
        self.client.set_experiment_tag(eid, key, json.dumps(view))

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
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, int(step))
                                               for k, v in metrics.items()])

    def log_inputs(self, run_id, datasets):
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        inputs = [DatasetInput(Dataset(d["name"], d["digest"], d["source_type"], d["source"],
                                       profile=d.get("profile")),
                               [InputTag(MLFLOW_DATASET_CONTEXT, d["context"])])
                  for d in datasets]
        self.client.log_inputs(run_id, inputs)

    def log_artifact(self, run_id, path, subdir=None):
        self.client.log_artifact(run_id, str(path), subdir)

    def log_table(self, run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
        """``MlflowClient.log_table``, but replacing the table when it exists (log_table itself
        appends, which would stack a summary once per rerun)."""
        import posixpath
        import tempfile

        folder = posixpath.dirname(artifact_file) or None
        if artifact_file not in [a.path for a in self.client.list_artifacts(run_id, folder)]:
            self.client.log_table(run_id, table, artifact_file)
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / posixpath.basename(artifact_file)
            table.to_json(path, orient="split", index=False, date_format="iso")
            self.client.log_artifact(run_id, str(path), folder)

    def set_tags(self, run_id, tags):
        from mlflow.entities import RunTag
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def heartbeat(self, run_id: str) -> None:
        self.client.set_tag(run_id, HEARTBEAT_TAG, str(int(time.time())))

    def end(self, run_id, status):
        try:
            self.client.set_terminated(run_id, status=status)
        except TrackingStoreError as e:
            db = sqlite_path(self.uri)
            if db is None or "full" not in str(e) or not end_in_place(db, run_id, status):
                raise

    def delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    # --- queries -------------------------------------------------------------------------
    def runs(self, experiment: str, filter_string: str = "") -> list:
        eid = self.experiment_id(experiment, create=False)
        if eid is None:
            return []
        out, token = [], None
        while True:
            page = self.client.search_runs([eid], filter_string=filter_string, max_results=1000,
                                           page_token=token)
            out += list(page)
            token = page.token
            if not token:
                return out

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
