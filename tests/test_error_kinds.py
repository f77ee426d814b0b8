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


def test_the_cli_keeps_a_bugs_traceback_and_says_a_user_error_in_one_line(monkeypatch):
    """A plain ValueError (a pandas or torch check, a bug of ours) escapes `friendly` with its
    traceback; a user error (DataError) ends in one line with exit code 2."""
    import typer
    from typer.testing import CliRunner

    from plstm_repro import cli
    from plstm_repro.errors import DataError

    app = typer.Typer()

    @app.command()
    @cli.friendly
    def run(kind: str):
        raise (DataError if kind == "user" else ValueError)("shape [3] vs [4]")

    runner = CliRunner()
    bug = runner.invoke(app, ["bug"])
    assert isinstance(bug.exception, ValueError) and not isinstance(bug.exception, DataError)
    assert bug.exit_code == 1 and "error: shape" not in bug.output
    user = runner.invoke(app, ["user"])
    assert user.exit_code == 2 and "error: shape [3] vs [4]" in user.output


def test_the_data_layer_reports_bad_input_as_data_errors(tmp_path):
    from plstm_repro.data.grid.corpus import align_words
    from plstm_repro.data.sines import make_sines
    from plstm_repro.errors import DataError

    bad = tmp_path / "s.align"
    bad.write_text("0 x sil\n")
    for call in (lambda: align_words(bad), lambda: make_sines(1, 0, sampling="bogus")):
        try:
            call()
        except DataError:
            continue
        raise AssertionError("expected a DataError")
