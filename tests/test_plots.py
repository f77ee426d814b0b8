"""Plots: every figure function draws from a history table and writes png/pdf/csv/md.

The histories here are FAKE, made up in the test only to exercise the drawing code; they are not
results of any run and say nothing about the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plstm_repro.experiments import ARTIFACTS
from plstm_repro.reference import paper_values
from plstm_repro.results import illustrations, plot_kit, plots

COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]


def fake_epoch_history(artifact, metric, epochs, seeds, level, rng, scale_fn=None):
    """Made-up per-epoch curves for every (variant, condition, seed) of the artifact."""
    rows = []
    for ci, cond in enumerate(artifact.conditions):
        for vi, var in enumerate(artifact.variants):
            for seed in range(seeds):
                run = f"fake-{artifact.id}-{vi}-{ci}-{seed}"
                for ep in range(1, epochs + 1):
                    v = level(vi, ci, ep) + rng.normal(0, 0.5)
                    rows.append((run, var.label, cond.label, seed, metric, ep, v))
                    rows.append((run, var.label, cond.label, seed, "epoch_time_s", ep, 1.0))
    return pd.DataFrame(rows, columns=COLUMNS)


def fake_step_history(artifact, steps, seeds, rng):
    rows = []
    for vi, var in enumerate(artifact.variants):
        for seed in range(seeds):
            run = f"fake-{artifact.id}-{vi}-{seed}"
            for s in range(20, steps + 1, 20):
                top = 90.0 if vi == 0 else 30.0
                acc = 10 + (top - 10) * (1 - np.exp(-s / 500)) + rng.normal(0, 2)
                rows.append((run, var.label, "default", seed, "step_train_acc", s, acc))
                rows.append((run, var.label, "default", seed, "step_train_loss", s,
                             2.3 * np.exp(-s / (700 if vi == 0 else 5000))))
    return pd.DataFrame(rows, columns=COLUMNS)


def check_outputs(paths, out, name):
    assert {p.name for p in paths} == {f"{name}.{e}" for e in ("png", "pdf", "csv", "md")}
    for p in paths:
        assert p.parent == out and p.stat().st_size > 0
    assert not list(out.glob(".*tmp")), "temporary files left behind"
    return pd.read_csv(out / f"{name}.csv"), (out / f"{name}.md").read_text()


def test_fig3d(tmp_path):
    art = ARTIFACTS["fig3d"]
    rng = np.random.default_rng(0)
    h = fake_epoch_history(art, "test_acc", 3, 2, lambda v, c, e: 95 - 10 * v - 5 * c + e, rng)
    paths = plots.plot_fig3d(art, h, tmp_path, "quick")
    table, md = check_outputs(paths, tmp_path, "fig3d")
    assert len(table) == 4 * 3 and set(table["n_seeds"]) == {2}  # incl. our LSTM t/100
    assert set(table["epoch_max"]) == {3}
    # ours: the last-epoch mean over 2 seeds, as written in csv and md
    r = table[(table.variant == "LSTM") & (table.condition == "async")].iloc[0]
    last = h[(h.variant == "LSTM") & (h.condition == "async") & (h.metric == "test_acc")
             & (h.step == 3)]["value"]
    assert r["mean"] == pytest.approx(last.mean()) and r["std"] == pytest.approx(last.std(ddof=0))
    assert f"{r['mean']:.2f} ± {r['std']:.2f}" in md
    # the paper's numbers, labelled as the paper's, with the source
    for s in ("99.26 ± 0.23", "99.61 ± 0.28", "97.89 ± 0.57", "98.95", "62.38", "74.30",
              "89.34", "51.72", "69.02", "paper's", "A_Freq_Task.ipynb", "`quick`"):
        assert s in md, s
    assert "2 of 1" not in md and "| 2 |" in md


def test_fig3d_partial_seeds_and_reruns(tmp_path):
    art = ARTIFACTS["fig3d"]
    rng = np.random.default_rng(1)
    h = fake_epoch_history(art, "test_acc", 2, 2, lambda v, c, e: 80.0, rng)
    # a second, shorter run of one (variant, condition, seed): the longer one is kept
    dup = h[(h.run_id == h.run_id.iloc[0]) & (h.step == 1)].assign(run_id="fake-rerun")
    h = pd.concat([dup, h], ignore_index=True)
    table, md = check_outputs(plots.plot_fig3d(art, h, tmp_path, "paper"), tmp_path, "fig3d")
    assert set(table["n_seeds"]) == {2} and set(table["epoch_max"]) == {2}
    assert "2 of 5" in md  # fewer seeds than the paper scale plans: shown


def test_missing_runs_raise(tmp_path):
    art = ARTIFACTS["fig3d"]
    with pytest.raises(ValueError, match="plstm reproduce fig3d"):
        plots.plot_fig3d(art, pd.DataFrame(columns=COLUMNS), tmp_path, "quick")
    rng = np.random.default_rng(2)
    h = fake_epoch_history(art, "test_acc", 2, 1, lambda v, c, e: 70.0, rng)
    h = h[~((h.variant == "BN-LSTM") & (h.condition == "highres"))]
    with pytest.raises(ValueError, match=r"BN-LSTM / highres.*plstm reproduce fig3d"):
        plots.plot_fig3d(art, h, tmp_path, "quick")
    with pytest.raises(ValueError, match="plstm reproduce mnist"):
        plots.plot_training_curves(ARTIFACTS["mnist"], h, tmp_path, "quick")
    assert not list(tmp_path.iterdir())


def test_fig4a(tmp_path):
    art = ARTIFACTS["fig4a"]
    rng = np.random.default_rng(3)
    h = fake_epoch_history(art, "test_acc", 12, 3,
                           lambda v, c, e: 50 + (40 - 10 * v) * (1 - np.exp(-e / 4)), rng)
    table, md = check_outputs(plots.plot_fig4a(art, h, tmp_path, "quick"), tmp_path, "fig4a")
    assert len(table) == 3 * 12 and (table["min"] <= table["mean"]).all()
    assert (table["mean"] <= table["max"]).all()
    assert "no number given" in md and "lower variance" in md and "Fig. 4a" in md
    last = table[(table.variant == "Phased LSTM") & (table.step == 12)].iloc[0]
    assert f"{last['mean']:.2f}" in md


def test_fig4b(tmp_path):
    art = ARTIFACTS["fig4b"]
    rng = np.random.default_rng(4)
    h = fake_epoch_history(art, "test_mse", 8, 1, lambda v, c, e: 0.0, rng)
    h.loc[h.metric == "test_mse", "value"] = np.exp(-h.step * 0.8) * 0.2
    table, md = check_outputs(plots.plot_fig4b(art, h, tmp_path, "quick"), tmp_path, "fig4b")
    assert set(table["variant"]) == {v.label for v in art.variants}
    assert "longer periods accelerate" in md.lower() and "no number given" in md
    assert f"{0.2 * np.exp(-8 * 0.8):.3g}" in md


@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_training_curves(tmp_path, name):
    art = ARTIFACTS[name]
    h = fake_step_history(art, 400, 2 if name == "digits" else 1, np.random.default_rng(5))
    table, md = check_outputs(plots.plot_training_curves(art, h, tmp_path, "quick"),
                              tmp_path, name)
    assert set(table["metric"]) == {"step_train_acc", "step_train_loss"}
    assert table["step"].max() == 400
    if name == "mnist":
        assert "≈ 90" in md and "10-40" in md and "Titan X" in md
    else:
        assert "stand-in" in md and "no paper number" in md


def test_fig2b(tmp_path):
    table, md = check_outputs(illustrations.plot_fig2b(ARTIFACTS["fig2b"], None, tmp_path, "smoke"),
                              tmp_path, "fig2b")
    x = table["x"].to_numpy()
    for tau in illustrations.FIG2B_TAU:
        k = table[f"k_tau{tau:g}"].to_numpy()
        c = table[f"c_tau{tau:g}"].to_numpy()
        dc = np.diff(c)
        shut = k[1:] == 0
        assert shut.mean() > 0.9 and np.all(dc[shut] == 0)  # the state holds while shut
        assert np.all(dc[~shut] >= 0)  # and moves towards the rising input while open
        assert c[-1] > 0.5 * np.tanh(x[-1])
    assert "r_on" in md and "0.05" in md


def test_reference_values():
    ref = paper_values("fig3d")
    assert ref.get("Phased LSTM", "highres").format() == "99.61 ± 0.28"
    assert ref.get("BN-LSTM", "standard").mean == pytest.approx(98.95, abs=0.005)
    assert paper_values("fig6c").get("Phased LSTM", "video only").mean == 81.15
    assert paper_values("table1").get("Phased LSTM", "rho 0.75").format() == "97.28 ± 0.10"
    assert not paper_values("fig4a").has_numbers and not paper_values("fig4b").has_numbers
    for a in ARTIFACTS:
        assert paper_values(a).source
    with pytest.raises(ValueError):
        paper_values("fig9")


def drawn_figures(monkeypatch) -> list:
    """Every figure the plot functions save, kept for inspection."""
    figs, save = [], plot_kit._save_figure

    def keep(fig, out_dir, name):
        figs.append(fig)
        return save(fig, out_dir, name)

    monkeypatch.setattr(plot_kit, "_save_figure", keep)
    return figs


def curve_lines(fig) -> list:
    """The curves over epochs or steps: every line but the horizontal references (axhline)."""
    return [ln for ax in fig.axes for ln in ax.get_lines()
            if not ln.get_label().startswith(("chance", "predicting", "_child"))]


def has_marker(line) -> bool:
    return line.get_marker() not in (None, "None", "", " ") and line.get_markersize() > 0


def curves_figure(name, epochs, tmp_path, monkeypatch):
    """The curve lines of a figure drawn from ``epochs`` epochs (FAKE values): an artifact's,
    or one run's own (``run``)."""
    art = ARTIFACTS.get(name)
    rng = np.random.default_rng(6)
    figs = drawn_figures(monkeypatch)
    if name == "digits":  # curves over optimiser steps: one logged point
        h = fake_step_history(art, 20 * epochs, 1, rng)
        plots.plot_training_curves(art, h, tmp_path, "smoke")
    elif name == "fig6c":
        h = pd.concat([fake_epoch_history(art, m, epochs, 1, lambda v, c, e: 50.0, rng)
                       for m in ("video/test_loss", "test_acc", "audio/test_acc",
                                 "video/test_acc")])
        plots.plot_fig6c(art, h, tmp_path, "smoke")
    elif name == "run":
        plots.plot_run_curves([{"train_loss": 0.7, "test_loss": 0.69, "train_acc": 50.0,
                                "test_acc": 51.0}] * epochs, tmp_path, "one run")
    else:
        metric = art.metric
        h = fake_epoch_history(art, metric, epochs, 1, lambda v, c, e: 0.1, rng)
        getattr(plots, art.plot)(art, h, tmp_path, "smoke")
    (fig,) = figs
    return curve_lines(fig)


@pytest.mark.parametrize("name", ["fig4a", "fig4b", "fig6c", "digits", "run"])
def test_a_one_epoch_curve_shows_its_point(tmp_path, monkeypatch, name):
    lines = curves_figure(name, 1, tmp_path, monkeypatch)
    assert lines and all(len(ln.get_xdata()) == 1 for ln in lines)
    assert all(has_marker(ln) for ln in lines), [ln.get_label() for ln in lines]


@pytest.mark.parametrize("name", ["fig4a", "run"])
def test_long_curves_are_plain_lines(tmp_path, monkeypatch, name):
    lines = curves_figure(name, plot_kit.MARKERS_UP_TO + 1, tmp_path, monkeypatch)
    assert lines and not any(has_marker(ln) for ln in lines)
