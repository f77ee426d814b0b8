"""`plstm report`: one self-contained page (and its markdown twin) for the whole reproduction.

The tracked runs here are FAKE: made-up metrics written straight into a temporary MLflow store
to exercise the report, not results of any training, saying nothing about the models.
"""

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from plstm_repro.cli import app
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.tracking import FINISHED, MlflowTracker
from plstm_repro.train import start_run

cli = CliRunner()


def fake_grid(tracker, art, scale, level, epochs=3, skip=0):
    """Finished runs for the grid of ``art`` at ``scale`` (minus the last ``skip`` points),
    with made-up per-epoch values of its metric: ``level(variant, condition, seed, epoch)``."""
    ids = []
    points = art.runs(scale)
    for var, cond, seed, cfg in points[:len(points) - skip]:
        rid = start_run(tracker, cfg, art.id, f"{var.label} | {cond.label} | seed {seed}",
                        {"artifact": art.id, "scale": scale, "variant": var.label,
                         "condition": cond.label, "plstm.role": "child",
                         "plstm.hardware": "fake CPU"})
        for ep in range(1, epochs + 1):
            tracker.log_metrics(rid, {art.metric: level(var.label, cond.label, seed, ep),
                                      "epoch_time_s": 1.0}, ep)
        tracker.end(rid, FINISHED)
        ids.append(rid)
    return ids


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    return runs, MlflowTracker(root=runs)


def make_store(store):
    runs, tr = store
    # fig3d at smoke: Phased LSTM ahead everywhere (made-up numbers)
    acc = {"Phased LSTM": 90.0, "BN-LSTM": 80.0, "LSTM": 60.0, "LSTM, t/100 (ours)": 70.0}
    ids = fake_grid(tr, ARTIFACTS["fig3d"], "smoke",
                    lambda v, c, s, e: acc[v] - (5.0 if c == "async" and v != "Phased LSTM"
                                                 else 0.0) + (3.0 if c == "highres" else 0) + e)
    # fig4b at smoke: two of five points missing
    fake_grid(tr, ARTIFACTS["fig4b"], "smoke", lambda v, c, s, e: 0.1 / e, skip=2)
    return runs, ids


def test_report_shows_every_artifact_with_verdicts_that_follow_from_the_numbers(store):
    runs, ids = make_store(store)
    res = cli.invoke(app, ["report", "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    html_path, md_path = runs / "report" / "report.html", runs / "report" / "report.md"
    page, md = html_path.read_text(), md_path.read_text()
    for art in ARTIFACTS.values():  # every artifact is there, run or not
        assert f"id='{art.id}'" in page and f"## {art.paper_ref}: {art.title}" in md
    # fig3d: complete at smoke, its figure embedded, claims decided by the numbers shown
    assert "scale smoke, complete (12 runs)" in page
    assert "Phased LSTM test_acc [standard] = 93 ≥ BN-LSTM test_acc [standard] = 83: yes" in md
    assert "**holds**: Phased LSTM is at least as accurate" in md
    assert "**holds**: With 10x oversampling (high resolution) the Phased LSTM improves." in md
    assert "**holds**: Asynchronous sampling is hard" in md
    assert all(rid in page for rid in ids)  # the runs behind it
    assert "fake CPU" in page and "Peephole connections" in page  # its deviations
    assert "tau ~ exp(U(1, 3)) (text: exp(U(0, 3))) [freq_task.py:79]" in page  # its protocol
    # fig4b: 3 of 5, said plainly, with the command that runs the rest
    assert "scale smoke, INCOMPLETE (3 of 5 runs)" in page
    assert "plstm reproduce fig4b --scale smoke" in page
    assert "**not enough runs**: Longer periods accelerate" in md
    # never run: plainly said
    assert "Not run yet. Run <code>plstm reproduce fig4a --scale quick</code>" in page
    # self-contained: images inline, nothing fetched from anywhere
    imgs = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(imgs) == 2 and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert not re.search(r"(src|href)=['\"](https?:|//|file:)", page)
    assert "<script" not in page
    # the markdown twin links the same figures, copied beside it
    for name in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (md_path.parent / name).stat().st_size > 0
    assert not list((runs / "report").glob(".*tmp"))


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser installed (chromium); the "
                                             "report's HTML was checked without rendering it")
def test_report_renders_in_a_headless_browser(store, tmp_path):
    runs, _ = make_store(store)
    assert cli.invoke(app, ["report", "--runs-dir", str(runs)]).exit_code == 0
    page = (runs / "report" / "report.html").read_text()
    # a copy with a probe that counts the images the browser decoded (the report has no script)
    probe = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
             "document.title='decoded '+i.filter(x=>x.complete&&x.naturalWidth>0).length+"
             "' of '+i.length;});</script>")
    test_page = tmp_path / "probe.html"
    test_page.write_text(page.replace("</body>", probe + "</body>"))
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom", test_page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert "<title>decoded 2 of 2</title>" in out.stdout, out.stderr[-2000:]
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--window-size=1200,3000", f"--screenshot={shot}",
                    (runs / "report" / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
