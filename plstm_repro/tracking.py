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

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Protocol

import pandas as pd

from .errors import EnvironmentProblem

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
# A busy SQLite store: MLflow waits up to 20 s per statement (busy_timeout), but SQLite answers
# "locked" at once where waiting could deadlock; such calls are tried again this many times.
BUSY_TRIES = 5
BUSY_WRITERS = 4  # past this many processes writing at once, a server is the better store
# client calls that write or read files of the artifact store rather than the database
ARTIFACT_CALLS = {"log_artifact", "log_artifacts", "list_artifacts", "download_artifacts",
                  "log_table", "log_figure", "log_image", "log_text", "log_dict"}


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


def default_uri(root: Path | str = "runs") -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


class TrackingStoreError(EnvironmentProblem):
    """The tracking store cannot be created, read or written: one line naming it and why."""


def redact(uri: str) -> str:
    """``uri`` without a password (postgresql://user:secret@host/db), for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for a server, memory or other stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    path = path.removeprefix("file:")  # sqlite:///file:/path?mode=ro&uri=true
    if not path or path == ":memory:":
        return None
    return Path(path)


@contextlib.contextmanager
def store_lock(db: Path):
    """Hold an exclusive lock on ``<db>.lock`` beside the database: processes that start at
    the same moment on a fresh store would otherwise all run MLflow's schema migration on it
    and all but one fail. Where the lock cannot be made (a read-only folder) an existing store
    is opened without it (there is nothing to create); a missing one cannot be made at all."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; MLflow's own creation path is all there is
        yield
        return
    lock = db.with_name(db.name + ".lock")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        if db.is_file():
            fd = None
        else:
            raise TrackingStoreError(f"tracking store {db}: cannot be created here "
                                     f"({e.strerror}: {lock})") from None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _store_cause(e: BaseException) -> str | None:
    """The database's or the disk's own words for ``e``, or None when it is not a store fault
    (a missing run, a bad parameter: those stay MLflow's errors)."""
    import sqlite3

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        db_error = getattr(e, "orig", e)  # SQLAlchemy wraps the DB-API error
        # the database file or its disk, not a constraint (a name two processes created at
        # once is MLflow's to report and ours to handle, see experiment_id)
        if isinstance(db_error, sqlite3.OperationalError) or \
                type(db_error) is sqlite3.DatabaseError:  # e.g. "file is not a database"
            return str(db_error).strip().splitlines()[0]
        if type(e).__module__.startswith("sqlalchemy") and type(e).__name__ == "OperationalError":
            return str(e).strip().splitlines()[0]
        if isinstance(e, OSError):
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            return f"{e.strerror or e}{where}"
        e = e.__cause__ or e.__context__
    return None


def _advice(cause: str) -> str:
    low = cause.lower()
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return "; make it and its folder writable, or give another --runs-dir"
    if "full" in low or "no space" in low:
        return "; free space on its disk, or give another --runs-dir"
    if "locked" in low or "busy" in low:
        return (f"; with more than {BUSY_WRITERS} processes writing at once use a tracking "
                "server (mlflow server --backend-store-uri sqlite:///mlflow.db, then "
                "MLFLOW_TRACKING_URI=http://host:5000)")
    return ""


def guarded(store: str, call):
    """``call()`` against the tracking store: tried again while SQLite says the database is
    busy, and any store fault raised as one TrackingStoreError naming ``store`` and the cause."""
    for attempt in range(BUSY_TRIES):
        try:
            return call()
        except Exception as e:  # MLflow's, SQLAlchemy's, alembic's or the disk's: sorted below
            cause = _store_cause(e)
            if cause is None:
                raise
            busy = "locked" in cause.lower() or "busy" in cause.lower()
            if busy and attempt < BUSY_TRIES - 1:
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
                continue
            tries = f" after {attempt + 1} tries" if busy else ""
            raise TrackingStoreError(f"tracking store {store}: {cause}{tries}"
                                     f"{_advice(cause)}") from None
    raise AssertionError("unreachable")


def end_in_place(db: Path, run_id: str, status: str) -> bool:
    """Mark a run ended with SQLite's rollback journal kept in memory: on a full disk the
    journal of even this one-row write cannot be made, but the row changes in place, so the run
    does not stay RUNNING. A crash inside this one statement could leave the file inconsistent,
    which is why it is only the last resort of a full disk. True if the run was marked."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db, timeout=20, isolation_level=None)) as con:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return False  # leaving WAL would rewrite the store's mode for everyone
            con.execute("PRAGMA journal_mode=MEMORY")
            cur = con.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                              (status, int(time.time() * 1000), run_id))
            return cur.rowcount == 1
    except sqlite3.Error:
        return False


class GuardedClient:
    """An ``MlflowClient`` whose every call goes through :func:`guarded`."""

    def __init__(self, client, store: str, artifacts: str):
        self._client, self._store, self._artifacts = client, store, artifacts

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_client", "_store", "_artifacts"):
            raise AttributeError(name)  # not yet set (copy, pickle): no recursion into _client
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        store = self._artifacts if name in ARTIFACT_CALLS else self._store

        @functools.wraps(attr)
        def call(*args, **kwargs):
            return guarded(store, lambda: attr(*args, **kwargs))
        return call


def check_server(uri: str, timeout: float = 10.0) -> None:
    """Fail fast, in one line, when a tracking server does not answer (MLflow's own client
    would retry for minutes and end in a long traceback)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise EnvironmentProblem(
            f"tracking server {uri} does not answer ({reason}); start it (e.g. mlflow server "
            "--backend-store-uri sqlite:///mlflow.db --host 0.0.0.0 --port 5000) or unset "
            "MLFLOW_TRACKING_URI to use the local store in runs/") from None


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    """One line: CPU model and cores, torch threads, and the GPU if torch sees one."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def environment_tags() -> dict[str, str]:
    """Where and with what a run was made: commit, host, hardware, versions."""
    import platform
    import socket

    import torch

    commit = git_commit()
    return {"git_commit": commit, "mlflow.source.git.commit": commit,
            "plstm.host": socket.gethostname(), "plstm.hardware": hardware(),
            "plstm.torch": torch.__version__, "plstm.python": platform.python_version()}


def describe_split(cfg, split: str, data) -> dict:
    """A split as an MLflow dataset input: name, digest, source (what generated or holds it)
    and profile. ``data.digest`` is used when a loader provides one; a padded split's tensors
    are hashed; a store-backed split (events, GRID) hashes what picks its rows from the store
    (the store's index, the rows, their lengths and labels, and the split's settings)."""
    import hashlib

    digest = data.digest
    if digest is None:
        h = hashlib.blake2b(digest_size=8)
        if hasattr(data, "x"):
            parts = [data.x, data.t, data.lengths, data.y]
        else:
            parts = [getattr(data, k) for k in ("indices", "lengths", "y") if hasattr(data, k)]
            store = getattr(data, "store", None)
            if store is not None and hasattr(store, "names"):
                h.update("\n".join(store.names).encode())
            h.update(repr(sorted((k, v) for k, v in vars(data).items()
                                 if isinstance(v, (bool, int, float, str)))).encode())
        for t in parts:
            t = torch_tensor(t)
            if t.numel() == 0:
                continue
            for chunk in t.reshape(t.shape[0], -1).split(4096):  # bounded memory per step
                h.update(chunk.contiguous().numpy().tobytes())
        digest = h.hexdigest()
    source = {"loader": f"plstm_repro.data ({cfg.data.name})", "split": split, "seed": cfg.seed,
              "config": {k: v for k, v in vars(cfg.data).items()}}
    profile = {"num_rows": len(data), "max_len": int(data.lengths.max()) if len(data) else 0,
               "features": int(data.input_size), "task": data.task,
               "time_unit": data.time_unit}
    return {"name": f"{cfg.data.name}-{split}", "digest": digest,
            "source_type": "plstm_repro", "source": json.dumps(source, default=str),
            "profile": json.dumps(profile),
            "context": "training" if split == "train" else "testing"}


def torch_tensor(value):
    """A CPU tensor of ``value`` (a tensor or a numpy array)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(value)


def runs_view_state(search: str = "", columns: list[str] | None = None,
                    group_by: tuple[str, ...] = ()) -> dict:
    """A runs-table state for a saved view: runs matching ``search``, newest first, with the
    dataset, metric, tag and param columns a comparison needs, grouped by the tags
    ``group_by`` (each group shows the average of its runs: the mean over seeds)."""
    cols = list(columns or VIEW_COLUMNS)
    group = {"aggregateFunction": "average",
             "groupByKeys": [{"mode": "tag", "groupByData": t} for t in group_by]} \
        if group_by else None
    return {"searchFilter": search, "orderByKey": "attributes.start_time",
            "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
            "datasetsFilter": [], "modelVersionFilter": "All Runs", "selectedColumns": cols,
            "columnOrder": cols, "runsHiddenMode": "SHOW_ALL", "viewMaximized": False,
            "runListHidden": False, "groupBy": group, "groupsExpanded": {}}


# The saved views of every experiment: id -> (name, state). The first groups the training
# runs by scale, variant and condition (a group's row is the mean over its seeds; a shared
# view cannot open parent runs, and grouping shows the grid points without them); the second
# lists the parents, which hold each grid's summary table, figure and claims.
VIEWS = {
    VIEW_ID: ("plstm: training runs by scale, variant, condition",
              runs_view_state(f"tags.`{ROLE_TAG}` != 'parent'",
                              group_by=("scale", "variant", "condition"))),
    f"{VIEW_ID}-parents": ("plstm: parent runs (summary, figure, claims)",
                           runs_view_state(f"tags.`{ROLE_TAG}` = 'parent'",
                                           ["attributes.`Duration`"] + [
                                               f"tags.`{t}`" for t in
                                               ("scale", "paper_ref", "grid_size",
                                                "git_commit")])),
}


def runs_url(base: str, experiment_id: str) -> str:
    """The runs table of an experiment with the saved view, in the model-training UI."""
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType="
            f"machine_learning&viewStateShareKey={VIEW_ID}")


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
