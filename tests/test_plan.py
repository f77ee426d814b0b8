"""reproduce --dry-run (plstm_repro.plan): the plan lists exactly the grid a reproduce would
train, writes nothing, and its estimates follow the measured step and evaluation times; and
the end of a reproduce prints the figure's table and where its files are."""

import dataclasses
import math

import pytest
from typer.testing import CliRunner

from plstm_repro import experiments, plan
from plstm_repro.cli import app
from plstm_repro.config import apply_overrides
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.sweep import shards

cli = CliRunner()
STEP_S, EVAL_BATCH_S = 0.5, 0.25  # the constant "measured" times of the arithmetic tests


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working folder (data/ and runs/ resolve here) and no tracking server."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def constant_times(monkeypatch):
    monkeypatch.setattr(plan, "_step_times", lambda model, opt, data, groups, cfg:
                        [STEP_S] * len(groups))
    monkeypatch.setattr(plan, "_eval_batch_s", lambda model, data, idx, device: EVAL_BATCH_S)


def invoke(*args):
    res = cli.invoke(app, [str(a) for a in args])
    return res, res.output + (res.stderr if res.stderr_bytes is not None else "")


def table_lines(out: str) -> list[list[str]]:
    """The plan's rows, split on runs of two or more spaces."""
    import re

    lines = out.splitlines()
    start = next(i for i, s in enumerate(lines) if re.match(r"artifact +variant", s)) + 2
    end = lines.index("", start)
    return [re.split(r"\s{2,}", s.strip()) for s in lines[start:end]]


def test_dry_run_lists_the_grid_and_writes_nothing(here):
    res, out = invoke("reproduce", "fig4a", "--scale", "smoke", "--dry-run", "--no-progress",
                      "--runs-dir", here / "runs")
    assert res.exit_code == 0, out
    want = [["fig4a", v.label, c.label, str(s), str(cfg.train.epochs)]
            for v, c, s, cfg in ARTIFACTS["fig4a"].runs("smoke")]
    rows = table_lines(out)
    assert [r[:5] for r in rows] == want
    for r in rows:
        assert r[5] == "3" and (r[6] == "<0.01" or float(r[6]) > 0)  # 48 / 16 steps, minutes
    assert "Total: 3 of 3 point(s) to train" in out and "nothing is trained" in out
    assert list(here.iterdir()) == []  # no runs/, mlruns/, mlflow.db, data/


def test_plan_is_the_grid_reproduce_would_run(here, constant_times):
    art = ARTIFACTS["fig3d"]
    rows = plan.plan(["fig3d"], "smoke")
    assert [(r.artifact, r.variant, r.condition, r.seed, r.epochs) for r in rows] == \
        [(art.id, v.label, c.label, s, cfg.train.epochs) for v, c, s, cfg in art.runs("smoke")]
    # every artifact, one shard of three: the same points as reproduce's selection, in order
    points = [(a, cfg) for a in ARTIFACTS.values() for _, _, _, cfg in a.runs("smoke")]
    mine = shards.select_shard(list(enumerate(points)), (2, 3))
    rows = plan.plan(list(ARTIFACTS), "smoke", shard="2/3")
    assert [(r.artifact, r.seed, r.epochs) for r in rows] == \
        [(a.id, cfg.seed, cfg.train.epochs) for _, (a, cfg) in mine]
    res, out = invoke("reproduce", "all", "--scale", "smoke", "--shard", "2/3", "--dry-run",
                      "--no-progress")
    assert res.exit_code == 0, out
    assert [r[:4] for r in table_lines(out)] == \
        [[r.artifact, r.variant, r.condition, str(r.seed)] for r in rows]
    assert f"{len(rows)} grid point(s) (shard 2/3 of a grid of {len(points)})" in out
    assert list(here.iterdir()) == []


def test_missing_files_are_a_row_not_a_crash(here, constant_times):
    rows = plan.plan(["table1", "mnist"], "smoke")
    assert rows and all(r.seconds is None and r.note.startswith("needs data: ") for r in rows)
    assert rows[0].note == "needs data: plstm download nmnist, then plstm preprocess nmnist"
    assert rows[-1].note == "needs data: plstm download mnist"
    text = plan.format_plan(rows)
    assert f"{len(rows)} point(s) without an estimate" in text and "  ?  " in text


def test_estimate_is_the_measured_steps_and_evaluations(constant_times):
    art = ARTIFACTS["digits"]  # every sequence 64 steps: the padding scale is exact
    base = art.runs("smoke")[0][3]
    n_train, n_test, bs = 1437, 360, base.train.batch_size  # the digits split, whatever n_*
    per_epoch = math.ceil(n_train / bs)
    eval_pass = EVAL_BATCH_S * n_test / base.train.eval_batch_size  # 256 + 104 rows of 64
    seconds = {}
    for epochs in (1, 2, 5):
        cfg = apply_overrides(base, {"train.epochs": epochs})
        (row,) = plan.estimate([(art, cfg)])
        assert row.steps == epochs * per_epoch
        assert row.seconds == pytest.approx(epochs * (per_epoch * STEP_S + eval_pass))
        seconds[epochs] = row.seconds
    assert seconds[5] == pytest.approx(5 * seconds[1]) and seconds[2] == pytest.approx(
        2 * seconds[1])
    # max_steps ends the run early: 100 steps, evaluated after the 2 epochs it started
    cfg = apply_overrides(base, {"train.epochs": 3, "train.max_steps": 100})
    (row,) = plan.estimate([(art, cfg)])
    assert row.steps == 100 and row.seconds == pytest.approx(100 * STEP_S + 2 * eval_pass)


def test_test_time_conditions_add_their_passes(constant_times, monkeypatch):
    art = ARTIFACTS["digits"]
    cfg = art.runs("smoke")[0][3]
    (one,) = plan.estimate([(art, cfg)])
    two = dataclasses.replace(art, evaluations=(experiments.Cell("again", {}),))
    (row,) = plan.estimate([(two, cfg)])
    eval_pass = EVAL_BATCH_S * 360 / 256
    assert row.seconds == pytest.approx(one.seconds + eval_pass)


def test_real_measurement_is_positive():
    art = ARTIFACTS["fig4a"]
    rows = plan.plan([art], "smoke", measure_steps=1)
    assert len(rows) == len(art.runs("smoke"))
    assert all(r.seconds > 0 and r.steps == 3 and r.trains for r in rows)


def test_jobs_divide_the_wall_time(here, constant_times):
    rows = [plan.Row("fig4a", f"v{i}", "default", 0, 1, 3, 60.0) for i in range(4)]
    rows.append(plan.Row("fig4a", "done", "default", 0, 1, 3, 600.0, "finished", False))
    assert plan.wall_seconds(rows, 1) == 240.0
    assert plan.wall_seconds(rows, 2) == 120.0 and plan.wall_seconds(rows, 4) == 60.0
    assert plan.wall_seconds(rows, 8) == 60.0  # more jobs than points: one run is the floor
    assert plan.wall_seconds(rows[:3], 2) == 120.0  # two workers, three equal runs
    text = plan.format_plan(rows, jobs=2)
    assert "Total: 4 of 5 point(s) to train: 0.07 h (4.0 min) one after another, 0.03 h " \
        "(2.0 min) with --jobs 2." in text
    res, out = invoke("reproduce", "fig4a", "--scale", "smoke", "--dry-run", "--jobs", "3",
                      "--no-progress")
    assert res.exit_code == 0, out
    total = 3 * 3 * STEP_S + 3 * EVAL_BATCH_S * 24 / 24  # three equal runs on three workers
    assert f"{plan._hours(total)} one after another, {plan._hours(total / 3)} with --jobs 3" \
        in out
    assert list(here.iterdir()) == []


def test_reproduce_ends_with_the_table_and_the_files(here, monkeypatch):
    """A two-point fig3d through the CLI: the table (ours beside the paper's) and the file
    paths are the last lines; a dry run afterwards marks both points finished, creating no
    run."""
    monkeypatch.setenv("PLSTM_CLAIM_SETTLE_S", "0")  # one process: no claim to wait for
    art = ARTIFACTS["fig3d"]
    small = dataclasses.replace(art, variants=art.variants[0::2], conditions=art.conditions[:1])
    monkeypatch.setitem(experiments.ARTIFACTS, "fig3d", small)
    runs = here / "runs"
    res, out = invoke("reproduce", "fig3d", "--scale", "smoke", "--no-progress",
                      "--runs-dir", runs)
    assert res.exit_code == 0, out
    lines = out.rstrip().splitlines()
    tail = "\n".join(lines[-30:])
    assert "| model | condition | ours: epoch | ours: mean ± std (%) |" in tail
    assert "paper's: epoch 70, 5 seeds (%)" in tail and "| Phased LSTM | standard | 1 |" in tail
    assert lines[-1].startswith("wrote ") and any(
        s == f"wrote {runs / 'figures/fig3d/smoke/fig3d.png'}" for s in lines[-6:])
    from plstm_repro.tracking import MlflowTracker

    n_runs = len(MlflowTracker(root=runs).runs("fig3d"))
    res, out = invoke("reproduce", "fig3d", "--scale", "smoke", "--dry-run", "--no-progress",
                      "--runs-dir", runs)
    assert res.exit_code == 0, out
    assert [r[-1] for r in table_lines(out)] == ["finished: skipped"] * 2
    assert "Total: 0 of 2 point(s) to train" in out
    assert len(MlflowTracker(root=runs).runs("fig3d")) == n_runs
