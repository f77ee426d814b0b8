"""The tracking store: where it is, one lock to create it, busy SQLite writes tried again, and
every store fault (read-only, full, corrupt, a server that does not answer) as one
:class:`TrackingStoreError` line naming the store and the cause."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import time
from pathlib import Path

from ..errors import EnvironmentProblem

# A busy SQLite store: MLflow waits up to 20 s per statement (busy_timeout), but SQLite answers
# "locked" at once where waiting could deadlock; such calls are tried again this many times.
BUSY_TRIES = 5
BUSY_WRITERS = 4  # past this many processes writing at once, a server is the better store
# client calls that write or read files of the artifact store rather than the database
ARTIFACT_CALLS = {"log_artifact", "log_artifacts", "list_artifacts", "download_artifacts",
                  "log_table", "log_figure", "log_image", "log_text", "log_dict"}


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
