"""The local tracking store under several processes at once, and its faults in one line."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plstm_repro.tracking import FINISHED, MlflowTracker

# One process of the race: import everything, say it is ready, wait for the starting gun, then
# open the (not yet existing) store and log a whole run, as `plstm train` does.
WORKER = r"""
import sys, time
from pathlib import Path
from plstm_repro.tracking import FINISHED, MlflowTracker
import mlflow.store.tracking.sqlalchemy_store, mlflow.store.model_registry.sqlalchemy_store
root, me, gun = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
(root.parent / f"ready-{me}").touch()
while not gun.exists():
    time.sleep(0.002)
t = MlflowTracker(root=root)
rid = t.start("race", f"run-{me}", {"p": me}, {"seed": me})
for step in range(5):
    t.log_metrics(rid, {"loss": 1.0 / (step + 1)}, step)
t.set_tags(rid, {"done": "yes"})
t.end(rid, FINISHED)
"""


def _env():
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_processes_starting_at_once_on_a_fresh_store_all_finish(tmp_path):
    n = 4
    root, gun = tmp_path / "runs", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(i), str(gun)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(n)]
    deadline = time.time() + 60
    while sum((tmp_path / f"ready-{i}").exists() for i in range(n)) < n:
        assert time.time() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    gun.touch()  # all at the same instant, on a store that does not exist yet
    results = [p.communicate(timeout=120) for p in procs]
    failed = [(i, err[-600:]) for i, (p, (_, err)) in enumerate(zip(procs, results))
              if p.returncode != 0]
    assert not failed, failed
    runs = _tracker(root).runs("race")
    assert sorted(r.data.params["p"] for r in runs) == [str(i) for i in range(n)]
    assert all(r.info.status == FINISHED and r.data.tags["done"] == "yes" for r in runs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one finished run (made once: a fresh store's migration takes seconds)."""
    root = tmp_path_factory.mktemp("store") / "runs"
    t = _tracker(root)
    rid = t.start("train-sines", "first", {"p": 1}, {})
    t.end(rid, FINISHED)
    return root


def _tracker(root):
    return MlflowTracker(uri=f"sqlite:///{root.resolve() / 'mlflow.db'}", root=root)


def test_a_read_only_store_is_one_line_naming_it(store):
    db = store.resolve() / "mlflow.db"
    env = {**_env(), "MLFLOW_TRACKING_URI": f"sqlite:///file:{db}?mode=ro&uri=true"}
    out = subprocess.run([sys.executable, "-m", "plstm_repro", "train", "sines", "--scale",
                          "smoke", "--no-progress", "--runs-dir", str(store)],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stdout + out.stderr
    assert str(db) in lines[0] and "readonly" in lines[0], lines


def _store_fault(message: str):
    """What MLflow raises when SQLite refuses a write: its exception over SQLAlchemy's."""
    import sqlite3

    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    try:
        raise sqlalchemy.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))
    except sqlalchemy.exc.OperationalError as e:
        try:
            raise MlflowException(message=e) from e
        except MlflowException as wrapped:
            return wrapped


def test_a_busy_store_is_tried_again_then_named_with_advice(store, monkeypatch):
    # simulated: SQLite's immediate "locked" (where waiting could deadlock) on the first tries
    from mlflow.tracking import MlflowClient

    t = _tracker(store)
    rid = t.start("train-sines", "busy", {}, {})
    real, calls = MlflowClient.log_batch, []

    def flaky(self, *a, **k):
        calls.append(1)
        if len(calls) <= 2:
            raise _store_fault("database is locked")
        return real(self, *a, **k)

    monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    t.log_metrics(rid, {"loss": 0.5}, 3)
    assert len(calls) == 3 and t.get_run(rid).data.metrics["loss"] == 0.5
    monkeypatch.setattr(MlflowClient, "log_batch",
                        lambda self, *a, **k: (_ for _ in ()).throw(_store_fault(
                            "database is locked")))
    monkeypatch.setattr("time.sleep", lambda s: None)
    from plstm_repro.tracking import TrackingStoreError

    with pytest.raises(TrackingStoreError) as e:
        t.log_metrics(rid, {"loss": 0.4}, 4)
    msg = str(e.value)
    assert "\n" not in msg and str(store.resolve() / "mlflow.db") in msg
    assert "database is locked" in msg and "tracking server" in msg


def test_a_full_disk_still_ends_the_run(store, monkeypatch):
    # simulated: on a full disk even the journal of set_terminated cannot be written (seen on
    # a full tmpfs); the run must not stay RUNNING
    from mlflow.tracking import MlflowClient

    t = _tracker(store)
    rid = t.start("train-sines", "full", {}, {})

    def full(self, *a, **k):
        raise _store_fault("database or disk is full")

    monkeypatch.setattr(MlflowClient, "set_terminated", full)
    t.end(rid, "FAILED")
    assert t.get_run(rid).info.status == "FAILED" and t.get_run(rid).info.end_time


def test_more_jobs_than_a_local_store_serves_well_are_told_once(tmp_path, monkeypatch):
    """--jobs past BUSY_WRITERS on the local SQLite store: one line of advice up front (here
    on a shard that holds no grid point, so nothing trains)."""
    from typer.testing import CliRunner

    from plstm_repro.cli import app
    from plstm_repro.tracking import BUSY_WRITERS

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["reproduce", "fig4b", "--scale", "smoke", "--shard", "999/999", "--no-progress",
            "--runs-dir", str(tmp_path)]
    many = CliRunner().invoke(app, [*args, "--jobs", str(BUSY_WRITERS + 1)])
    few = CliRunner().invoke(app, [*args, "--jobs", str(BUSY_WRITERS)])
    assert many.exit_code == 0 and few.exit_code == 0, many.output + few.output
    advice = (f"note: {BUSY_WRITERS + 1} processes will write to one local SQLite store; past "
              f"{BUSY_WRITERS} writers a tracking server is the better store (README: A grid "
              "over processes and machines)")
    assert [ln for ln in many.output.splitlines() if "tracking server" in ln] == [advice]
    assert "tracking server" not in few.output
