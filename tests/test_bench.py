"""run_bench(quick=True) runs in seconds and writes its JSON and chart."""

from __future__ import annotations

import json

import pytest

from plstm_repro.bench import METHODS, run_bench


def test_quick_bench_writes_results(tmp_path):
    data = run_bench(quick=True, out_dir=tmp_path / "bench", progress=False)
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert (tmp_path / "bench" / "bench.png").stat().st_size > 0
    assert not list((tmp_path / "bench").glob("*.tmp"))
    assert saved["results"] == data["results"]
    modes = {(r["shape"], r["mode"]) for r in saved["results"]}
    assert modes == {("tiny", "train"), ("tiny", "infer"), ("tiny stream", "infer")}
    for row in saved["results"]:
        assert row["methods"]["nn.LSTM"]["ratio"] == pytest.approx(1.0)
        expected = set(METHODS) - ({"sparse"} if row["mode"] == "train" else set())
        assert set(row["methods"]) == expected
        assert all(m["median_ms"] > 0 for m in row["methods"].values())
    assert "nn.LSTM" in data["table"]


def test_bench_rejects_bad_repeats(tmp_path):
    with pytest.raises(ValueError, match="repeats"):
        run_bench(repeats=0, out_dir=tmp_path, progress=False)
