"""A grid point that meets a user error is skipped in one line; any other exception (a bug in
our code or a library's) is never taken for a skipped point: its traceback is shown and the
point is reported as crashed."""

from pathlib import Path

from plstm_repro.errors import ConfigError
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.sweep import lifecycle


def _point(monkeypatch, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(lifecycle, "run_one", boom)
    lines = []
    art = ARTIFACTS["fig4b"]
    out = lifecycle.run_point(art, art.runs("smoke")[0][3], "smoke", None, Path("runs"), 0,
                              None, echo=lines.append)
    return out, "\n".join(lines)


def test_a_bug_is_a_crash_with_its_traceback(monkeypatch):
    out, shown = _point(monkeypatch, ValueError("operands could not be broadcast together"))
    assert out.status == "crashed"
    assert "Traceback" in shown and "operands could not be broadcast" in shown
    assert "skipped" not in shown


def test_a_user_error_skips_the_point_in_one_line(monkeypatch):
    out, shown = _point(monkeypatch, ConfigError("config: train.lr=inf is out of range"))
    assert out.status == "error" and shown == "fig4b: skipped: config: train.lr=inf is out of range"
    out, shown = _point(monkeypatch, FileNotFoundError("MNIST file data/mnist/x not found"))
    assert out.status == "error" and "Traceback" not in shown
