"""Two CPU processes (gloo) train to the same weights as one process with the same global batch."""

import os
import subprocess
import sys

import torch

from plstm_repro.tracking import MlflowTracker

# 45 samples in batches of 16: the last batch (13) splits unevenly, 7 + 6
ARGS = ["train", "sines", "--model", "phased", "--scale", "smoke", "--no-progress",
        "--set", "data.n_train=45", "--set", "train.batch_size=16", "--set", "train.epochs=2"]


def run(cmd, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def final_weights(runs):
    (r,) = MlflowTracker(root=runs).runs("train-sines")
    assert r.info.status == "FINISHED"
    ck = torch.load(runs / "checkpoints" / r.info.run_id / "last.pt", weights_only=False)
    return ck["model"], r


def test_two_processes_equal_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run([sys.executable, "-m", "plstm_repro", *ARGS, "--runs-dir", one], tmp_path)
    out = run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", "29533", "-m", "plstm_repro", *ARGS, "--runs-dir", two],
              tmp_path)
    assert out.count("done  train-sines") == 1  # only rank 0 prints and tracks
    w1, r1 = final_weights(one)
    w2, r2 = final_weights(two)
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-5, atol=1e-6)
    assert abs(r1.data.metrics["train_loss"] - r2.data.metrics["train_loss"]) < 1e-5
