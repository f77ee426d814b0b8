"""run_bench(quick=True) runs in seconds and writes its JSON and chart."""

from __future__ import annotations

import json

import pytest
import torch

from plstm_repro.bench import BN_METHODS, CUDA_METHODS, METHODS, bench_methods, run_bench
from plstm_repro.errors import EnvironmentProblem

CPU = set(METHODS) - {"compiled"}  # the compiled (CUDA) path is timed on the CPU on request


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
            expected = set(BN_METHODS) & CPU
        else:
            expected = CPU - ({"sparse"} if row["mode"] == "train" else set())
        assert set(row["methods"]) == expected
        assert all(m["median_ms"] > 0 for m in row["methods"].values())
    assert "nn.LSTM" in data["table"]


def test_bench_rejects_bad_repeats(tmp_path):
    with pytest.raises(ValueError, match="repeats"):
        run_bench(repeats=0, out_dir=tmp_path, progress=False)


def test_bench_one_model(tmp_path):
    data = run_bench(quick=True, out_dir=tmp_path, progress=False, models=("BN-LSTM",))
    assert {(r["shape"], r["model"]) for r in data["results"]} == {("tiny", "BN-LSTM")}
    assert all(set(r["methods"]) == set(BN_METHODS) & CPU for r in data["results"])
    with pytest.raises(ValueError, match="models"):
        run_bench(quick=True, out_dir=tmp_path, progress=False, models=("GRU",))


def test_methods_per_device():
    assert set(bench_methods(torch.device("cpu"))) == CPU
    assert "compiled" in bench_methods(torch.device("cpu"), compiled=True)
    assert bench_methods(torch.device("cuda", 0)) == CUDA_METHODS
    assert set(CUDA_METHODS) == {"nn.LSTM", "reference", "compiled"}


def test_cuda_without_a_gpu_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EnvironmentProblem, match="no CUDA device is visible"):
        run_bench(quick=True, out_dir=tmp_path, progress=False, device="cuda")
    assert not (tmp_path / "bench.json").exists()


def test_cli_bench_device_cuda_without_a_gpu_is_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from plstm_repro.cli import app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(app, ["bench", "--quick", "--device", "cuda", "--out",
                                   str(tmp_path)])
    assert res.exit_code == 1
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert lines == ["error: --device cuda: no CUDA device is visible"]


def test_pick_shapes():
    from plstm_repro.bench import pick_shapes

    assert [s["name"] for s in pick_shapes(["n-mnist", "GRID merged"])] == ["N-MNIST",
                                                                          "GRID merged"]
    with pytest.raises(ValueError, match="--shape: unknown"):
        pick_shapes(["imagenet"])
