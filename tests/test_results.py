"""One answer to "which runs count": plot, report and the dry run's plan agree, and a finished
run of a config outside the declared grid (an older declaration, an ad-hoc variant) counts for
none of them."""

import csv
from pathlib import Path

from test_cli import ok

from plstm_repro import results
from plstm_repro.config import apply_overrides
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.plan import store_states
from plstm_repro.results.report import select_runs
from plstm_repro.sweep.lifecycle import run_one
from plstm_repro.tracking import MlflowTracker


def test_plot_report_and_plan_count_the_same_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PLSTM_LEASE_SETTLE_S", "0.05")
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    ok("reproduce", "fig4a", "--scale", "smoke", "--no-progress", "--runs-dir", runs)
    art = ARTIFACTS["fig4a"]
    off_grid = apply_overrides(art.runs("smoke")[0][3], {"seed": 7, "data.n_train": 40})
    tracker = MlflowTracker(root=runs)
    run_one(off_grid, art, "smoke", tracker, runs, progress=False, echo=lambda s: None)
    ok("plot", "fig4a", "--scale", "smoke", "--runs-dir", runs)
    with open(Path(runs) / "figures" / "fig4a" / "smoke" / "fig4a.csv") as f:
        assert {row["n_seeds"] for row in csv.DictReader(f)} == {"1"}  # seed 7 left out
    counted, n = select_runs(tracker, art, "smoke")
    assert n == 3 and {r.info.run_id for r in counted} == {
        r.info.run_id for r in results.counted(tracker.runs("fig4a"), art, "smoke")[0]}
    assert all(r.data.tags["seed"] == "0" for r in counted)
    points = [(art, cfg) for *_, cfg in art.runs("smoke")]
    assert set(store_states(points, runs).values()) == {"finished"}
