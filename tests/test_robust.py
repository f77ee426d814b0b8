"""Long runs that survive: non-finite losses, SIGTERM, checkpoints inside an epoch, unreadable
checkpoints, and checkpoints that are data, not code."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from plstm_repro import runner as runner_mod
from plstm_repro import train as train_mod
from plstm_repro.cli import app
from plstm_repro.tracking import MlflowTracker

cli = CliRunner()
# 40 samples in batches of 8: 5 steps per epoch, 2 epochs
SMALL = ["train.epochs=2", "data.n_train=40", "train.batch_size=8"]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs"


def invoke(*args):
    res = cli.invoke(app, [str(a) for a in args])
    return res, res.output


def train(runs, **kw):
    args = {"dataset": "sines", "model": "phased", "scale": "smoke", "overrides": SMALL,
            "root": runs, "progress": False, "echo": lambda s: None, "seed": 5}
    return runner_mod.train(**{**args, **kw})


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def at_step(monkeypatch, k, action):
    """Run ``action()`` inside the k-th training step (counted over the whole run)."""
    real = train_mod.loss_and_hits
    calls = {"n": 0}

    def wrapped(out, data):
        if out.requires_grad:
            calls["n"] += 1
            if calls["n"] == k:
                res = action(out, data)
                if res is not None:
                    return res
        return real(out, data)

    monkeypatch.setattr(train_mod, "loss_and_hits", wrapped)


def test_non_finite_loss_fails_the_run_in_one_line_and_keeps_the_checkpoint(runs, monkeypatch):
    at_step(monkeypatch, 7, lambda out, data: (out.sum() * float("nan"), 0.0, len(data.y)))
    res, out = invoke("train", "sines", "--scale", "smoke", "--no-progress", "--runs-dir", runs,
                      *[a for s in SMALL for a in ("--set", s)])
    assert res.exit_code == 1, out
    assert "Traceback" not in out
    line = out.strip().splitlines()
    assert len(line) == 1 and "non-finite loss (nan) at step 7 (epoch 2, batch 2/5)" in line[0]
    assert "last finite loss" in line[0] and "learning rate 0.001" in line[0]
    (run,) = MlflowTracker(root=runs).runs("train-sines")
    assert run.info.status == "FAILED"
    assert run.data.tags["plstm.failure"] == "non-finite loss at step 7"
    ck = torch.load(runs / "checkpoints" / run.info.run_id / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["step"] == 5  # the last good one
    assert all(torch.isfinite(v).all() for v in ck["model"].values())


def test_sigterm_mid_epoch_is_killed_and_resumes_to_the_same_weights(runs, monkeypatch):
    full = train(runs)
    # a real SIGTERM to this process in step 3 of epoch 1: the step completes, a checkpoint
    # is written, the run ends KILLED
    at_step(monkeypatch, 3, lambda out, data: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt):
        train(runs)
    tr = MlflowTracker(root=runs)
    killed = [r for r in tr.runs("train-sines") if r.info.run_id != full.run_id]
    assert [r.info.status for r in killed] == ["KILLED"]
    rid = killed[0].info.run_id
    ck = torch.load(runs / "checkpoints" / rid / "last.pt", weights_only=True)
    assert ck["epoch"] == 0 and ck["step"] == 3 and ck["partial"]["batch"] == 3
    monkeypatch.undo()
    res = train(runs, resume=True)
    assert res.run_id == rid and res.status == "FINISHED"
    a, b = weights(full.checkpoint), weights(res.checkpoint)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    steps = [h.step for h in tr.client.get_metric_history(rid, "test_acc")]
    assert steps == [1, 2]


def test_timed_checkpoints_inside_an_epoch_resume_after_a_crash(runs, monkeypatch):
    full = train(runs)

    def crash(out, data):
        raise RuntimeError("power cut")

    at_step(monkeypatch, 8, crash)  # epoch 2, batch 3
    with pytest.raises(RuntimeError):
        train(runs, checkpoint_minutes=1e-9)  # a checkpoint after every batch
    (rid,) = [r.info.run_id for r in MlflowTracker(root=runs).runs("train-sines")
              if r.info.status == "FAILED"]
    ck = torch.load(runs / "checkpoints" / rid / "last.pt", weights_only=True)
    assert ck["partial"] == {**ck["partial"], "epoch": 2, "batch": 2} and ck["step"] == 7
    monkeypatch.undo()
    res = train(runs, resume=True)
    assert res.run_id == rid
    a, b = weights(full.checkpoint), weights(res.checkpoint)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_sigterm_to_the_cli_process(runs, tmp_path):
    """A scheduler's SIGTERM to a real `plstm train`: exit 143, one line, run KILLED."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "plstm_repro", "train", "sines", "--scale", "smoke",
           "--no-progress", "--runs-dir", str(runs), "--set", "train.epochs=500"]
    p = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(runs.glob("checkpoints/*/last.pt")) and time.time() < deadline:
        time.sleep(0.2)  # training started: epoch 1 is done
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, out + err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    (run,) = MlflowTracker(root=runs).runs("train-sines")
    assert run.info.status == "KILLED"


def test_unreadable_checkpoint_names_the_file_and_offers_restart(runs, monkeypatch):
    at_step(monkeypatch, 7, lambda out, data: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt):
        train(runs)
    monkeypatch.undo()
    (old,) = MlflowTracker(root=runs).runs("train-sines")
    path = runs / "checkpoints" / old.info.run_id / "last.pt"
    path.write_bytes(b"not a checkpoint at all")
    args = ["train", "sines", "--scale", "smoke", "--no-progress", "--runs-dir", runs, "--seed",
            "5", *[a for s in SMALL for a in ("--set", s)]]
    res, out = invoke(*args, "--resume")
    assert res.exit_code == 2 and "Traceback" not in out
    assert str(path) in out and "not a readable plstm checkpoint" in out and "--restart" in out
    res, out = invoke(*args, "--restart")
    assert res.exit_code == 0, out
    tr = MlflowTracker(root=runs)
    new = [r for r in tr.runs("train-sines") if r.info.run_id != old.info.run_id]
    assert [r.info.status for r in new] == ["FINISHED"]
    old = tr.get_run(old.info.run_id)
    assert old.data.tags["plstm.superseded_by"] == new[0].info.run_id
    assert path.read_bytes() == b"not a checkpoint at all"  # nothing deleted


def test_a_checkpoint_that_would_run_code_is_refused(runs, tmp_path):
    marker = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):  # unpickling this calls builtins.exec: it would write a file
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    evil = tmp_path / "someone_elses.pt"
    torch.save({"config": {}, "model": {}, "x": Payload()}, evil)
    res, out = invoke("eval", evil)
    assert res.exit_code == 2 and "Traceback" not in out
    assert f"checkpoint: {evil} was refused: it needs exec" in out
    assert not marker.exists()


def test_reproduce_goes_on_past_an_unreadable_checkpoint_and_restarts_it(runs, monkeypatch):
    # a fig4b grid point killed in its first step, its checkpoint then corrupted
    at_step(monkeypatch, 1, lambda out, data: os.kill(os.getpid(), signal.SIGTERM))
    res, out = invoke("reproduce", "fig4b", "--scale", "smoke", "--no-progress", "--runs-dir",
                      runs)
    assert res.exit_code == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in out
    monkeypatch.undo()
    (killed,) = [r for r in MlflowTracker(root=runs).runs("fig4b")
                 if r.info.status == "KILLED" and r.data.tags["plstm.role"] == "child"]
    path = runs / "checkpoints" / killed.info.run_id / "last.pt"
    path.write_bytes(b"\0" * 10)
    res, out = invoke("reproduce", "fig4b", "--scale", "smoke", "--no-progress", "--runs-dir",
                      runs)
    assert res.exit_code == 1 and "Traceback" not in out
    assert out.count("done  fig4b") == 4  # the other grid points still ran
    assert str(path) in out and "--restart" in out
    assert "fig4b: 4 of 5 grid points finished (1 unfinished)" in out
    res, out = invoke("reproduce", "fig4b", "--scale", "smoke", "--no-progress", "--runs-dir",
                      runs, "--restart")
    assert res.exit_code == 0, out
    assert out.count("skip  fig4b") == 4 and out.count("done  fig4b") == 1
    assert "fig4b: 5 runs" in out and path.exists()


def test_sigterm_outside_training_is_handled_like_ctrl_c(runs, monkeypatch):
    """While a command is not inside a training loop (loading data, between grid points)."""
    def unhandled(signum, frame):
        raise RuntimeError("SIGTERM reached the default handler")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        monkeypatch.setattr(runner_mod, "resolve_train_config",
                            lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
        res, out = invoke("train", "sines", "--runs-dir", runs)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert res.exit_code == 128 + signal.SIGTERM, (out, res.exception)
    assert "interrupted (SIGTERM)" in out
