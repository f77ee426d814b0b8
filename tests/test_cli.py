"""Every command at smoke scale against a temporary MLflow store; resume; error messages."""

import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from plstm_repro import runner as runner_mod
from plstm_repro import train as train_mod
from plstm_repro.cli import app
from plstm_repro.tracking import MlflowTracker

cli = CliRunner()


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs"


def invoke(*args):
    res = cli.invoke(app, [str(a) for a in args])
    return res, res.output + (res.stderr if res.stderr_bytes is not None else "")


def ok(*args):
    res, out = invoke(*args)
    assert res.exit_code == 0, out
    return out


def test_help_is_fast_and_lazy():
    code = "import sys, plstm_repro.cli; print(sorted(m for m in ('torch', 'mlflow', 'tonic', " \
           "'cv2', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("cmd", ["train", "eval", "reproduce", "plot", "download", "preprocess",
                                 "ui", "bench"])
def test_every_command_has_an_example(cmd):
    assert "Example: plstm" in ok(cmd, "--help")


def test_train_logs_everything_and_eval_rebuilds_from_checkpoint(runs):
    out = ok("train", "sines", "--model", "phased", "--scale", "smoke", "--no-progress",
             "--set", "data.sampling=async", "--set", "train.epochs=2", "--runs-dir", runs)
    assert "done  train-sines | Phased LSTM | async | seed 0" in out
    tr = MlflowTracker(root=runs)
    assert tr.runs("fig3d") == []  # ad-hoc runs stay out of the artifact's experiment
    (run,) = tr.runs("train-sines")
    assert run.info.status == "FINISHED"
    p, tags, m = run.data.params, run.data.tags, run.data.metrics
    assert p["data.sampling"] == "async" and p["model.name"] == "phased_lstm"
    assert p["train.epochs"] == "2" and p["model.tau_init"] == "(1.0, 3.0)"  # authors' code
    assert tags["artifact"] == "fig3d" and tags["scale"] == "smoke" and tags["git_commit"]
    assert tags["paper_ref"] == "Fig. 3d" and tags["variant"] == "Phased LSTM"
    assert tags["plstm.role"] == "adhoc" and "smoke" in run.info.run_name
    assert tags["plstm.hardware"] and tags["mlflow.source.git.commit"] == tags["git_commit"]
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"sines-train", "sines-test"}
    assert len(inputs["sines-train"].dataset.digest) == 16
    assert inputs["sines-train"].dataset.digest != inputs["sines-test"].dataset.digest
    assert '"sampling": "async"' in inputs["sines-train"].dataset.source
    assert [t.value for t in inputs["sines-test"].tags] == ["testing"]
    exp = tr.client.get_experiment_by_name("train-sines")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "metrics.`test_acc`" in exp.tags["mlflow.sharedViewState.plstm"]
    for k in ("train_loss", "test_loss", "test_acc", "epoch_time_s", "gate_openness",
              "updates_per_neuron"):
        assert k in m, k
    assert [h.step for h in tr.client.get_metric_history(run.info.run_id, "test_acc")] == [1, 2]
    arts = [a.path for a in tr.client.list_artifacts(run.info.run_id, "checkpoint")]
    assert arts == ["checkpoint/last.pt"]
    figs = [a.path for a in tr.client.list_artifacts(run.info.run_id, "figures")]
    assert figs == ["figures/curves.png"]
    # eval by run-id prefix, under another condition than training
    out = ok("eval", run.info.run_id[:8], "--set", "data.sampling=highres", "--runs-dir", runs)
    assert "(highres) phased_lstm" in out and "test_acc" in out
    ck = runs / "checkpoints" / run.info.run_id / "last.pt"
    assert "test_acc" in ok("eval", ck)


def test_reproduce_skips_finished_runs_then_plots(runs):
    out = ok("reproduce", "fig4a", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    assert out.count("done  fig4a") == 3
    for ext in ("png", "pdf", "csv", "md"):
        assert (runs / "figures" / "fig4a" / "smoke" / f"fig4a.{ext}").stat().st_size > 0
    out = ok("reproduce", "fig4a", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    assert out.count("skip  fig4a") == 3 and "done  fig4a" not in out
    assert "fig4a.md" in ok("plot", "fig4a", "--runs-dir", runs)


def test_plot_never_trains(runs):
    res, out = invoke("plot", "fig3d", "--runs-dir", runs)
    assert res.exit_code == 2 and "no finished runs" in out and "plstm reproduce fig3d" in out
    assert not (runs / "checkpoints").exists()
    assert "fig2b.png" in ok("plot", "fig2b", "--runs-dir", runs)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("exc, status", [(KeyboardInterrupt, "KILLED"), (RuntimeError, "FAILED")])
def test_interrupted_run_is_marked_and_resumes(runs, monkeypatch, exc, status):
    real_eval = train_mod.evaluate
    calls = {"n": 0}

    def failing_eval(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise exc("stop in epoch 2")
        return real_eval(*a, **k)

    monkeypatch.setattr(train_mod, "evaluate", failing_eval)
    args = {"dataset": "sines", "model": "lstm", "scale": "smoke", "overrides": ["train.epochs=3"],
            "root": runs, "progress": False, "echo": lambda s: None}
    with pytest.raises(exc):
        runner_mod.train(**args)
    tr = MlflowTracker(root=runs)
    (run,) = tr.runs("train-sines")
    assert run.info.status == status
    rid = run.info.run_id
    ck = torch.load(runs / "checkpoints" / rid / "last.pt", weights_only=False)
    assert ck["epoch"] == 1
    monkeypatch.setattr(train_mod, "evaluate", real_eval)
    res = runner_mod.train(**args, resume=True)
    assert res.run_id == rid and res.status == "FINISHED"
    (run,) = tr.runs("train-sines")
    assert run.info.status == "FINISHED"
    steps = [h.step for h in tr.client.get_metric_history(rid, "test_acc")]
    assert steps == [1, 2, 3]


def test_resumed_run_equals_uninterrupted_run(runs, monkeypatch):
    args = {"dataset": "sines", "model": "phased", "scale": "smoke", "root": runs,
            "progress": False, "echo": lambda s: None}
    full = runner_mod.train(**args, overrides=["train.epochs=2"], seed=3)
    real_eval = train_mod.evaluate
    calls = {"n": 0}

    def failing_eval(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_eval(*a, **k)

    monkeypatch.setattr(train_mod, "evaluate", failing_eval)
    with pytest.raises(KeyboardInterrupt):
        runner_mod.train(**args, overrides=["train.epochs=2"], seed=3)
    monkeypatch.setattr(train_mod, "evaluate", real_eval)
    res = runner_mod.train(**args, overrides=["train.epochs=2"], seed=3, resume=True)
    assert res.run_id != full.run_id  # a new run, resumed from its own checkpoint
    a = torch.load(full.checkpoint, weights_only=False)["model"]
    b = torch.load(res.checkpoint, weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


@pytest.mark.parametrize("args, message", [
    (["train", "cifar"], "dataset: unknown 'cifar'; valid: sines, sines2, adding, mnist, digits"),
    (["train", "sines", "--model", "gru"], "model: unknown name 'gru'; valid: lstm"),
    (["train", "sines", "--scale", "huge"], "--scale: unknown 'huge'; valid: smoke, quick, paper"),
    (["train", "sines", "--set", "model.hiden_size=3"], "--set: unknown key 'model.hiden_size'"),
    (["train", "sines", "--set", "model.hidden_size=big"], "--set model.hidden_size: expected int"),
    (["train", "sines", "--set", "model.tau_init=3"], "expected 2 comma-separated values"),
    (["train", "sines", "--set", "train.epochs"], "--set: expected key=value"),
    (["reproduce", "fig9"], "artifact: unknown 'fig9'; valid: fig3d, fig4a, fig4b"),
    (["plot", "fig9"], "artifact: unknown 'fig9'"),
    (["eval", "nope"], "eval: 'nope' is neither a checkpoint file nor a run id"),
    (["eval", "abc123"], "eval: 'abc123' is not a checkpoint file, and no run ids"),
    (["download", "cifar"], "dataset: unknown 'cifar'"),
])
def test_bad_input_gives_one_clear_line(runs, args, message):
    res, out = invoke(*args, "--runs-dir", runs) if args[0] != "download" else invoke(*args)
    assert res.exit_code == 2, out
    assert message in out
    assert "Traceback" not in out


def test_unknown_sampling_is_a_clear_error(runs):
    res, out = invoke("train", "sines", "--scale", "smoke", "--set", "data.sampling=fast",
                      "--runs-dir", runs)
    assert res.exit_code == 2 and "sampling" in out and "highres" in out


def test_download_and_preprocess(runs, tmp_path):
    assert "nothing to download" in ok("download", "sines")
    res, out = invoke("download", "mnist", "--from", tmp_path / "empty", "--root", tmp_path / "d")
    assert res.exit_code != 0 and "train-images-idx3-ubyte.gz" in out
    out = ok("preprocess", "sines", "--scale", "smoke", "--set", "data.sampling=highres")
    assert '"n": 48' in out and '"time_unit": "ms"' in out


def test_reproduce_all_goes_on_past_a_missing_dataset(runs, monkeypatch):
    from plstm_repro import experiments

    arts = {k: experiments.ARTIFACTS[k] for k in ("mnist", "fig2b")}
    from plstm_repro.sweep import reproduce as reproduce_mod

    monkeypatch.setattr(reproduce_mod, "ARTIFACTS", arts)
    res, out = invoke("reproduce", "all", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    assert res.exit_code == 1 and "Traceback" not in out
    assert "mnist: skipped" in out and "plstm download mnist" in out
    assert (runs / "figures" / "fig2b" / "smoke" / "fig2b.png").exists()  # the others still ran


def test_bench_command_quick(tmp_path):
    out = ok("bench", "--quick", "--out", tmp_path / "bench")
    assert "nn.LSTM" in out or (tmp_path / "bench" / "bench.json").exists()
    assert (tmp_path / "bench" / "bench.json").exists()


def test_mnist_pipeline_end_to_end_on_generated_idx_files(runs, monkeypatch, tmp_path):
    """download --from, the IDX reader, step-logged training of both models and the plot, on
    small random IDX files in the real on-disk format (this checks the plumbing, not results)."""
    from test_data_mnist import _fake_resources, fake_mnist

    src = tmp_path / "mnist_src"
    fake_mnist(src, n_train=40, n_test=10)
    _fake_resources(monkeypatch, src)
    assert "mnist is in data/mnist" in ok("download", "mnist", "--from", src)
    out = ok("reproduce", "mnist", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    assert out.count("done  mnist") == 2
    (r,) = [r for r in MlflowTracker(root=runs).runs("mnist")
            if r.data.tags.get("variant") == "LSTM"]
    assert r.data.params["model.hidden_size"] == "8" and r.data.params["train.batch_size"] == "16"
    tr = MlflowTracker(root=runs)
    assert [h.step for h in tr.client.get_metric_history(r.info.run_id, "step_train_acc")] == \
        [1, 2, 3]  # logged every step at smoke scale (40 samples, batch 16)
    assert (runs / "figures" / "mnist" / "smoke" / "mnist.png").stat().st_size > 0


def test_plot_without_scale_falls_back_to_a_complete_scale(runs):
    ok("reproduce", "fig4a", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    # one quick-scale run: the quick grid is incomplete, so an unscaled plot uses smoke
    from plstm_repro.config import apply_overrides
    from plstm_repro.experiments import ARTIFACTS

    art = ARTIFACTS["fig4a"]
    cfg = apply_overrides(art.runs("quick")[0][3], {"data.n_train": 32, "data.n_test": 16,
                                                    "train.epochs": 1, "model.hidden_size": 8})
    runner_mod.run_one(cfg, art, "quick", MlflowTracker(root=runs), runs, progress=False,
                       echo=lambda s: None)
    out = ok("plot", "fig4a", "--runs-dir", runs)
    assert "figures/fig4a/smoke/fig4a.png" in out
    res, out = invoke("plot", "fig4a", "--scale", "quick", "--runs-dir", runs)
    assert res.exit_code == 2 and "LSTM" in out  # an explicit scale reports what is missing
    res, out = invoke("plot", "fig4a", "--scale", "paper", "--runs-dir", runs)
    assert res.exit_code == 2 and "no finished runs at scale paper" in out
