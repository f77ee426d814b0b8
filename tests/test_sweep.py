"""A grid over processes and machines: shards, leases, a parent run with children, and two
shards against a real `mlflow server` (one of them killed mid-run, then rerun)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from plstm_repro import results
from plstm_repro.config import flat, spec_hash
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.sweep import leases, shards
from plstm_repro.tracking import MlflowTracker


def test_shards_are_disjoint_and_cover_the_grid():
    plan = list(range(11))
    parts = [shards.select_shard(plan, (i, 4)) for i in range(1, 5)]
    assert sorted(x for p in parts for x in p) == plan and all(parts)
    assert shards.parse_shard("2/4") == (2, 4) and shards.parse_shard(None) == (1, 1)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            shards.parse_shard(bad)


def test_two_processes_leasing_one_config_at_once_one_wins(tmp_path, monkeypatch):
    """Two trackers (as two processes would) lease the same config at the same moment."""
    monkeypatch.setenv("PLSTM_CLAIM_SETTLE_S", "0.5")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trackers = [MlflowTracker(uri=store, root=tmp_path) for _ in range(2)]
    trackers[0].experiment_id("fig4b")
    barrier, won = threading.Barrier(2), {}
    cfg = ARTIFACTS["fig4b"].runs("smoke")[0][3]

    def lease(k):
        tr = trackers[k]

        def start(extra):
            return tr.start("fig4b", f"lease {k}", flat(cfg), extra)

        barrier.wait()
        won[k] = leases.lease_new(tr, "fig4b", spec_hash(cfg), start)

    threads = [threading.Thread(target=lease, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [k for k, rid in won.items() if rid is not None]
    assert len(winners) == 1, won
    runs = trackers[0].runs("fig4b")  # the loser's run is deleted
    assert [r.info.run_id for r in runs] == [won[winners[0]]]
    # a third process now sees a live lease and does not even try
    from plstm_repro.sweep.lifecycle import decide

    d = decide(trackers[1], "fig4b", cfg, tmp_path, lambda extra: pytest.fail("started"))
    assert d.action == "busy" and "heartbeat" in d.note


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A real `mlflow server` with a SQLite database on a free 127.0.0.1 port."""
    port = free_port()
    where = tmp_path / "server"
    where.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{where / 'mlflow.db'}", "--artifacts-destination",
                             str(where / "artifacts"), "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], cwd=where,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def shard(i, url, tmp_path, *extra):
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "OMP_NUM_THREADS": "1",
           "PLSTM_CLAIM_SETTLE_S": "0.3"}
    return subprocess.Popen([sys.executable, "-m", "plstm_repro", "reproduce", "fig4b",
                             "--scale", "smoke", "--shard", f"{i}/2", "--no-progress",
                             "--runs-dir", str(tmp_path / "runs"), *extra], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_two_shards_against_a_server_one_killed_and_rerun(server, tmp_path):
    art = ARTIFACTS["fig4b"]
    plan = {spec_hash(cfg) for *_, cfg in art.runs("smoke")}
    tr = MlflowTracker(uri=server, root=tmp_path)
    one, two = shard(1, server, tmp_path), shard(2, server, tmp_path)
    # kill shard 1 while it holds a lease (a RUNNING child of its own)
    deadline, hit = time.time() + 240, None
    while hit is None and time.time() < deadline and one.poll() is None:
        for r in tr.runs("fig4b", "attributes.status = 'RUNNING'"):
            if f":{one.pid}:" in r.data.tags.get(leases.LEASE_TAG, ""):
                hit = r.info.run_id
        time.sleep(0.2)
    assert hit is not None, "shard 1 never started a grid point"
    one.send_signal(signal.SIGTERM)
    out_one = one.communicate(timeout=120)[0]
    out_two = two.communicate(timeout=240)[0]
    # (it may have finished that point just before the signal came)
    assert one.returncode in (128 + signal.SIGTERM, 0), out_one
    assert two.returncode == 0, out_two
    assert "Traceback" not in out_one + out_two
    assert tr.get_run(hit).info.status in ("KILLED", "FINISHED")
    # the rerun of shard 1 (two jobs at once) finishes the grid
    again = shard(1, server, tmp_path, "--jobs", "2")
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "fig4b: 5 runs" in out and "wrote" in out

    runs = tr.runs("fig4b")
    children = [r for r in runs if r.data.tags.get("plstm.role") == "child"]
    finished = [results.run_spec_hash(r) for r in children if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(plan)  # every config trained to the end exactly once
    (parent,) = [r for r in runs if r.data.tags.get("plstm.role") == "parent"]
    assert parent.info.status == "FINISHED" and parent.data.tags["scale"] == "smoke"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert all("| smoke" in r.info.run_name for r in children)
    arts = {a.path for a in tr.client.list_artifacts(parent.info.run_id, "summary")}
    assert arts == {"summary/fig4b_smoke.json"}
    assert parent.data.tags["claim.fig4b-tau"] in ("holds", "does not hold")
