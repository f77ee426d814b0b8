"""No tracebacks for user errors: each one driven through the CLI ends in a clear message and
a non-zero exit. Help without misleading metavars; the kernels build once per version."""

import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from plstm_repro.cli import app

cli = CliRunner()


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    res = cli.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize("args, code, message", [
    (["eval", "/nowhere/runs/checkpoints/3f2a/last.pt"], 2,
     "eval: no checkpoint file at /nowhere/runs/checkpoints/3f2a/last.pt"),
    (["eval", "runs"], 2, "eval: runs is a folder"),
    (["eval", "not-an-id"], 2, "is neither a checkpoint file nor a run id"),
    (["reproduce", "fig4b", "--shard", "3/2"], 2, "--shard: expected 1 <= i <= N, got '3/2'"),
    (["reproduce", "fig4b", "--shard", "half"], 2, "--shard: expected i/N such as 2/4"),
    (["reproduce", "fig4b", "--jobs", "0"], 2, "--jobs: expected a number >= 1"),
    (["train", "sines", "--set", "train.device=cuda:3"], 2, "--set train.device: cuda:3"),
    (["train", "sines", "--set", "train.device=toaster"], 2, "'toaster' is not a device"),
    (["ui", "--port", "70000"], 2, "--port: expected 1-65535"),
    (["train", "sines", "--runs-dir", "afile"], 1, "afile"),
    (["report", "--runs-dir", "afile"], 1, "afile"),
])
def test_user_errors_end_in_one_message(here, args, code, message):
    (here / "runs").mkdir()
    (here / "afile").write_text("not a folder")
    got, out = run(*args)
    assert got == code, out
    assert message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


def test_offline_download_is_a_message_not_a_traceback(here, monkeypatch):
    from plstm_repro.data.mnist import MNIST

    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{closed_port()}/mnist/"])
    got, out = run("download", "mnist", "--root", here / "data")
    assert got == 1 and "Traceback" not in out
    assert out.startswith("error: Could not download train-images-idx3-ubyte.gz")
    assert "plstm download mnist --from DIR" in out  # how to place it by hand


def test_unreachable_tracking_server_is_one_line(here, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    got, out = run("train", "sines", "--scale", "smoke", "--no-progress")
    assert got == 1 and "Traceback" not in out
    assert "does not answer" in out and "unset MLFLOW_TRACKING_URI" in out


def test_a_busy_port_is_an_error_not_a_log_line(here):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        got, out = run("ui", "--port", port)
    assert got == 1 and f"ui: port {port} on 127.0.0.1 is in use" in out
    assert f"make ui PORT={port + 1}" in out
    # through make, as a user types it (PORT=...): the same exit code 1
    if os.path.exists("/usr/bin/make"):
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            p = subprocess.run(["make", "-s", "-C", repo, "ui", f"PORT={port}",
                                f"VENV={os.path.dirname(os.path.dirname(sys.executable))}"],
                               capture_output=True, text=True, timeout=120, cwd=here,
                               check=False)
        assert p.returncode != 0 and "is in use" in p.stderr + p.stdout


def test_ui_prints_the_runs_table_links(here, monkeypatch):
    from plstm_repro.tracking import MlflowTracker

    MlflowTracker(root=here / "runs").experiment_id("fig3d")
    seen = {}
    monkeypatch.setattr(subprocess, "call", lambda cmd: seen.setdefault("cmd", cmd) and 0)
    got, out = run("ui", "--port", closed_port(), "--runs-dir", here / "runs")
    assert got == 0, out
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "mlflow", "ui"] and "127.0.0.1" in cmd
    assert cmd[cmd.index("--backend-store-uri") + 1].endswith("runs/mlflow.db")
    assert "runs?workflowType=machine_learning&viewStateShareKey=plstm" in out
    assert "fig3d" in out


@pytest.mark.parametrize("cmd", ["train", "reproduce", "eval", "report", "ui", "bench",
                                 "download", "plot", "preprocess"])
def test_help_shows_no_misleading_metavars(cmd):
    got, out = run(cmd, "--help")
    assert got == 0 and "<bool>" not in out and "Example: plstm" in out


BUILD_TWICE = """
import sys
import torch.utils.cpp_extension as ext
from plstm_repro.cells import _ext
if sys.argv[1] == "second":
    def rebuild(*a, **k):
        raise SystemExit("rebuilt")
    ext.load = rebuild
print(_ext.load_extension() is not None)
"""


def test_the_kernels_build_once_and_a_later_command_imports_them(tmp_path):
    """The first process may compile (one line on stderr); a later one must not even ask."""
    env = {k: v for k, v in os.environ.items() if k != "PLSTM_NO_EXTENSION"}
    outs = [subprocess.run([sys.executable, "-c", BUILD_TWICE, which], capture_output=True,
                           text=True, timeout=900, env=env, check=False) for which in ("first", "second")]
    first, second = outs
    if first.stdout.strip() != "True":
        pytest.skip(f"the kernels cannot be built here: {first.stderr[-500:]}")
    assert [ln for ln in first.stderr.splitlines() if "compiling" in ln] in \
        ([], ["plstm_repro: compiling the fused kernels, once, ~35 s"])
    assert second.returncode == 0 and second.stdout.strip() == "True", second.stderr
    assert "compiling" not in second.stderr


def test_a_missing_build_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    import torch.utils.cpp_extension as ext

    from plstm_repro.cells import _ext

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(ext, "load", lambda **kw: calls.append(kw) or "module")
    assert _ext._build("plstm_ops_test", ["-O3"], []) == "module"
    assert calls and calls[0]["build_directory"].startswith(str(tmp_path))
    assert capsys.readouterr().err == "plstm_repro: compiling the fused kernels, once, ~35 s\n"
