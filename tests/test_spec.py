"""A run's spec apart from its execution: the versioned spec hash, stored runs still found
after a field is added, configs checked when built (before any run exists), and a grid made
once counting for any later execution (device, data root, evaluation batch size, --jobs)."""

import dataclasses

import pytest
from typer.testing import CliRunner

from plstm_repro import results
from plstm_repro.cli import app
from plstm_repro.config import (
    RunConfig,
    TrainConfig,
    apply_overrides,
    flat,
    from_params,
    same_spec,
    spec_hash,
)
from plstm_repro.errors import ConfigError
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.tracking import FINISHED, MlflowTracker

EXECUTION = {"train.device": "meta", "data.root": "/elsewhere", "train.eval_batch_size": 7,
             "train.log_every": 3}


def test_spec_hash_leaves_the_execution_out():
    cfg = ARTIFACTS["fig3d"].runs("smoke")[0][3]
    other = apply_overrides(cfg, EXECUTION)
    assert spec_hash(other) == spec_hash(cfg) and same_spec(other, cfg)
    assert spec_hash(cfg).startswith("s1-")  # versioned
    assert spec_hash(apply_overrides(cfg, {"train.lr": 2e-3})) != spec_hash(cfg)
    assert spec_hash(apply_overrides(cfg, {"seed": 1})) != spec_hash(cfg)


def _with_new_field(cfg: RunConfig, value=None):
    """``cfg`` in a version of RunConfig whose train section has one field more (default 0)."""
    train2 = dataclasses.make_dataclass("Train2", [("new_knob", int, 0)], bases=(TrainConfig,),
                                        frozen=True)
    run2 = dataclasses.make_dataclass(
        "Run2", [("train", train2, dataclasses.field(default_factory=train2))],
        bases=(RunConfig,), frozen=True)
    extra = {} if value is None else {"new_knob": value}
    return run2(data=cfg.data, model=cfg.model, seed=cfg.seed,
                train=train2(**dataclasses.asdict(cfg.train), **extra))


def test_a_field_added_with_a_default_changes_no_hash():
    for *_, cfg in ARTIFACTS["fig4b"].runs("smoke"):
        assert spec_hash(_with_new_field(cfg)) == spec_hash(cfg)
        assert spec_hash(_with_new_field(cfg, 5)) != spec_hash(cfg)


def test_runs_stored_before_a_field_existed_or_made_elsewhere_are_found(tmp_path):
    tracker = MlflowTracker(root=tmp_path)
    cfg = ARTIFACTS["fig4b"].runs("smoke")[0][3]
    old = {k: v for k, v in flat(cfg).items() if k != "model.bn"}  # before model.bn existed
    old_tags = {"config_hash": "0123456789abcdef"}  # the hash the old code stored
    before = tracker.start("fig4b", "old", old, old_tags)
    tracker.end(before, FINISHED)
    elsewhere = tracker.start("fig4b", "gpu", flat(apply_overrides(cfg, EXECUTION)), {})
    tracker.end(elsewhere, FINISHED)
    other = tracker.start("fig4b", "other", flat(apply_overrides(cfg, {"train.lr": 0.5})), {})
    tracker.end(other, FINISHED)
    found = results.find(tracker, "fig4b", spec_hash(cfg), (FINISHED,))
    assert {r.info.run_id for r in found} == {before, elsewhere}
    assert from_params({k: str(v) for k, v in old.items()}) == cfg


@pytest.mark.parametrize("key, value, shown, allowed", [
    ("train.epochs", "0", "=0", "an integer >= 1"),
    ("train.batch_size", "0", "=0", "an integer >= 1"),
    ("train.grad_clip", "nan", "=nan", "a finite number >= 0"),
    ("train.grad_clip", "-1", "=-1.0", "a finite number >= 0"),
    ("train.lr", "inf", "=inf", "a finite number > 0"),
    ("data.rho", "0", "=0.0", "a finite number > 0 and <= 1"),
    ("data.sampling", "hires", "='hires'", "one of standard, highres, async"),
    ("model.tau_init", "3,1", "=(3.0, 1.0)", "a <= b"),
    ("seed", "1e20", "=100000000000000000000", "an integer >= 0"),
    ("seed", "-1", "=-1", "an integer >= 0"),
])
def test_each_bad_value_names_key_value_and_range(key, value, shown, allowed):
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), [f"{key}={value}"])
    text = str(e.value)
    assert f"{key}{shown} " in text and allowed in text and "\n" not in text


@pytest.mark.parametrize("key, value, what", [("model.hidden_size", "1e7", "GiB to train"),
                                              ("data.n_train", "1e8", "GiB in memory")])
def test_sizes_that_cannot_fit_are_refused_with_an_estimate(key, value, what):
    with pytest.raises(ConfigError, match=f"{key}={int(float(value))}.*{what}.*machine's"):
        apply_overrides(RunConfig(), [f"{key}={value}"])


def invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res, res.output  # stdout and stderr as a terminal shows them


@pytest.mark.parametrize("args", [
    ["train", "sines", "--set", "train.epochs=0"],
    ["train", "sines", "--set", "seed=1e20"],
    ["reproduce", "fig4b", "--scale", "smoke", "--device", "cuda"],
    ["train", "sines", "--scale", "smoke", "--device", "cuda"],
    ["reproduce", "fig4b", "--scale", "smoke", "--set", "train.lr=0.1"],
])
def test_bad_configs_end_in_one_line_before_any_run_exists(args, tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runs = tmp_path / "runs"
    res, out = invoke(*args, "--runs-dir", runs)
    assert res.exit_code == 2 and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1, out
    if "--device" in args:
        assert "no CUDA device is visible" in out
    assert not (runs / "mlflow.db").exists()  # nothing in a store


def test_a_grid_made_once_counts_for_any_later_execution(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PLSTM_CLAIM_SETTLE_S", "0.05")
    runs = tmp_path / "runs"
    res, out = invoke("reproduce", "fig4b", "--scale", "smoke", "--no-progress",
                      "--runs-dir", runs)
    assert res.exit_code == 0 and out.count("done  fig4b") == 5, out
    res, out = invoke("reproduce", "fig4b", "--scale", "smoke", "--no-progress", "--runs-dir",
                      runs, "--set", "train.eval_batch_size=7", "--set",
                      f"data.root={tmp_path / 'elsewhere'}", "--device", "cpu", "--jobs", "2")
    assert res.exit_code == 0, out
    assert "done  fig4b" not in out and out.count("skip  fig4b") == 5, out


def test_resume_needs_the_spec_equal_not_the_execution(tmp_path):
    from plstm_repro.train import fit

    cfg = apply_overrides(RunConfig(), {"data.n_train": 16, "data.n_test": 8,
                                        "train.epochs": 1, "model.hidden_size": 4,
                                        "train.batch_size": 8})
    first = fit(cfg, root=tmp_path, progress=False)
    assert first.checkpoint is not None
    elsewhere = apply_overrides(cfg, {"train.eval_batch_size": 3, "data.root": "/elsewhere",
                                      "train.log_every": 1})
    again = fit(elsewhere, root=tmp_path, progress=False, resume_run_id=first.run_id)
    assert again.metrics == first.metrics  # nothing left to train: the same run, resumed
    with pytest.raises(ConfigError, match="trained with another config"):
        fit(apply_overrides(cfg, {"train.lr": 0.01}), root=tmp_path, progress=False,
            resume_run_id=first.run_id)
