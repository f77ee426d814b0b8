"""Experiment tracking: MLflow through an explicit client (no global active run), or nothing.

By default the store is a local SQLite file ``runs/mlflow.db`` with artifacts under
``runs/mlartifacts`` (no server needed); ``MLFLOW_TRACKING_URI`` (read when a tracker is made,
never at import) points it anywhere else, a shared ``mlflow server`` included. Several processes
may share the local store: the first to open it creates it under a lock beside the database
(``mlflow.db.lock``), busy writes are tried again, and a store that cannot be written (read-only,
full, corrupt) is one :class:`TrackingStoreError` line naming it and the cause.

Layout, made for comparing runs in the MLflow UI:

- one experiment per paper artifact (``fig3d``, ...), holding a parent run per (artifact, scale)
  (``plstm.role = parent``) whose children (``mlflow.parentRunId``) are the grid points;
  ad-hoc ``plstm train`` runs go to ``train-<dataset>`` instead;
- every run carries its scale in its name and tags, its datasets as MLflow dataset inputs (name,
  digest, source), the git commit and the hardware it ran on;
- every experiment is tagged as model training (``mlflow.experimentKind``) and holds a saved
  view of the runs table with the metric columns shown (``mlflow.sharedViewState.plstm``);
  :func:`runs_url` is the link that opens it (MLflow 3.17 otherwise opens on the GenAI overview).
"""

from .base import (
                   EXPERIMENT_TAGS,
                   FAILED,
                   FINISHED,
                   HEARTBEAT_TAG,
                   HISTORY_COLUMNS,
                   KILLED,
                   PARENT_TAG,
                   ROLE_TAG,
                   RUNNING,
                   VIEW_COLUMNS,
                   VIEW_ID,
                   NullTracker,
                   Tracker,
)
from .client import MlflowTracker
from .describe import (
                   VIEWS,
                   describe_split,
                   environment_tags,
                   git_commit,
                   hardware,
                   runs_url,
                   runs_view_state,
                   torch_tensor,
)
from .store import (
                   ARTIFACT_CALLS,
                   BUSY_TRIES,
                   BUSY_WRITERS,
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

__all__ = ["ARTIFACT_CALLS", "BUSY_TRIES", "BUSY_WRITERS", "EXPERIMENT_TAGS", "FAILED",
           "FINISHED", "HEARTBEAT_TAG", "HISTORY_COLUMNS", "KILLED", "PARENT_TAG", "ROLE_TAG",
           "RUNNING", "VIEWS", "VIEW_COLUMNS", "VIEW_ID", "GuardedClient", "MlflowTracker",
           "NullTracker", "Tracker", "TrackingStoreError", "check_server", "default_uri",
           "describe_split", "end_in_place", "environment_tags", "git_commit", "guarded",
           "hardware", "redact", "runs_url", "runs_view_state", "sqlite_path", "store_lock",
           "torch_tensor"]
