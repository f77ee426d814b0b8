"""run_bench(quick=True) runs in seconds and writes its JSON and chart."""

from __future__ import annotations

import json

import pytest

from plstm_repro.bench import BN_METHODS, METHODS, run_bench


def test_quick_bench_writes_results(tmp_path):
    data = run_bench(quick=True, out_dir=tmp_path / "bench", progress=False)
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert (tmp_path / "bench" / "bench.png").stat().st_size > 0
    assert not list((tmp_path / "bench").glob("*.tmp"))
    assert saved["results"] == data["results"]
    rows = {(r["shape"], r["model"], r["mode"]) for r in saved["results"]}
    assert rows == {("tiny", m, mode) for m in ("Phased LSTM", "BN-LSTM")
                    for mode in ("train", "infer")} | {("tiny stream", "Phased LSTM", "infer")}
    for row in saved["results"]:
        assert row["methods"]["nn.LSTM"]["ratio"] == pytest.approx(1.0)
        if row["model"] == "BN-LSTM":
            expected = set(BN_METHODS)
        else:
            expected = set(METHODS) - ({"sparse"} if row["mode"] == "train" else set())
        assert set(row["methods"]) == expected
        assert all(m["median_ms"] > 0 for m in row["methods"].values())
    assert "nn.LSTM" in data["table"]


def test_bench_rejects_bad_repeats(tmp_path):
    with pytest.raises(ValueError, match="repeats"):
        run_bench(repeats=0, out_dir=tmp_path, progress=False)


def test_bench_one_model(tmp_path):
    data = run_bench(quick=True, out_dir=tmp_path, progress=False, models=("BN-LSTM",))
    assert {(r["shape"], r["model"]) for r in data["results"]} == {("tiny", "BN-LSTM")}
    assert all(set(r["methods"]) == set(BN_METHODS) for r in data["results"])
    with pytest.raises(ValueError, match="models"):
        run_bench(quick=True, out_dir=tmp_path, progress=False, models=("GRU",))
