"""N-MNIST: the binary format, download/placement, preprocessing into the store, the event split.

Every recording here is generated in the exact on-disk format (Orchard's 5-byte events, tonic's
folder layout and zips), corrupt ones included; nothing is downloaded.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from plstm_repro.data import load_split, nmnist
from plstm_repro.data.download import ChecksumError, DownloadError
from plstm_repro.data.events import EventSplit, stratified_subset
from plstm_repro.data.nmnist import (
    NMNIST,
    SYNTHETIC,
    CorruptRecording,
    decode_recording,
    download_nmnist,
    encode_events,
    preprocess_nmnist,
)
from plstm_repro.data.store import Store


def random_events(rng, n):
    t = np.sort(rng.integers(0, 300_000, n))
    return {"x": rng.integers(0, 34, n), "y": rng.integers(0, 34, n),
            "p": rng.integers(0, 2, n), "t": t}


def write_tree(root: Path, per_digit=(2, 1), seed=0, corrupt=True) -> dict:
    """Train/ and Test/ trees of valid recordings (per_digit per split), plus corrupt files in
    Train: a truncated record, an empty file, events off the sensor; Test lacks digit 7."""
    rng = np.random.default_rng(seed)
    made = {"Train": [], "Test": []}
    for folder, k in zip(("Train", "Test"), per_digit):
        for d in range(10):
            if folder == "Test" and d == 7:
                continue
            for i in range(k):
                ev = random_events(rng, int(rng.integers(20, 60)))
                path = root / folder / str(d) / f"{d}{i:04d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                overflow = 10 if i == 0 and ev["t"][10] >= 2 ** 13 else None
                path.write_bytes(encode_events(**ev, overflow_at=overflow))
                made[folder].append((d, path, ev))
    if corrupt:
        bad = root / "Train" / "3"
        (bad / "truncated.bin").write_bytes(encode_events(**random_events(rng, 5))[:-2])
        (bad / "empty.bin").write_bytes(b"")
        (bad / "offsensor.bin").write_bytes(encode_events(
            x=[40], y=[2], p=[1], t=[100]))
    return made


# --- the binary format -----------------------------------------------------------------------

def test_encoding_by_hand_and_tonic_reader():
    # x = 5, y = 7, p = 1, t = 0x012345 us -> bytes 05 07 (0x80 | 0x01) 0x23 0x45
    raw = encode_events([5], [7], [1], [0x012345])
    assert raw == bytes([5, 7, 0x81, 0x23, 0x45])
    ev = decode_recording(raw)
    assert (ev["x"][0], ev["y"][0], ev["p"][0], ev["t"][0]) == (5, 7, 1, 0x012345)
    assert ev["x"].dtype == np.uint8 and ev["t"].dtype == np.uint32


def test_overflow_marker_adds_2_pow_13_to_later_events():
    # an overflow record (y = 240) between two events stored as 100 and 50: tonic adds 8192 to
    # everything after the marker
    raw = encode_events([1, 2], [3, 4], [0, 1], [100, 50 + 2 ** 13], overflow_at=1)
    assert len(raw) == 15 and raw[6] == 240
    ev = decode_recording(raw)
    assert ev["t"].tolist() == [100, 50 + 2 ** 13] and ev["x"].tolist() == [1, 2]


@pytest.mark.parametrize("raw, why", [(b"", "empty"), (b"\x01\x02\x03", "multiple of 5"),
                                      (bytes([40, 1, 0, 0, 9]), "outside the 34x34")])
def test_corrupt_recordings_are_named(raw, why):
    with pytest.raises(CorruptRecording, match=why):
        decode_recording(raw)


# --- placement and download ----------------------------------------------------------------

def test_from_extracted_tree_then_preprocess_counts_and_names_corrupt(tmp_path):
    src = tmp_path / "src"
    made = write_tree(src)
    root = tmp_path / "data"
    download_nmnist(root, from_dir=src, progress=False, echo=lambda s: None)
    assert (root / "NMNIST" / "Train" / "0" / "00000.bin").is_file()
    said = []
    summary = preprocess_nmnist(root, progress=False, echo=said.append)
    tr, te = summary["train"], summary["test"]
    assert tr["recordings"] == len(made["Train"]) == 20 and te["recordings"] == 9
    assert tr["corrupt"] == 3 and te["corrupt"] == 0
    assert {Path(c["path"]).name for c in tr["corrupt_files"]} == {
        "truncated.bin", "empty.bin", "offsensor.bin"}
    assert te["missing_digit_folders"] == [str(root / "NMNIST" / "Test" / "7")]
    assert any("truncated.bin" in s for s in said) and any("Test/7" in s for s in said)
    # the store holds exactly what the files hold, in order, with labels and names
    store = Store(root / "NMNIST" / "cache" / "train")
    assert store.records["label"].tolist() == [d for d, _, _ in made["Train"]]
    for i, (_, path, ev) in enumerate(made["Train"]):
        assert store.names[i] == str(path.relative_to(src))
        got = store.gather("events", [i])
        for f in ("x", "y", "p", "t"):
            assert np.array_equal(got[f][0], ev[f]), f
    # a second run with the caches present does nothing
    again = preprocess_nmnist(root, progress=False, echo=said.append)
    assert again["train"]["cached"] and again["train"]["recordings"] == 20


def make_zips(src: Path, out: Path, extra: dict[str, bytes] | None = None) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    md5 = {}
    for split, folder in (("train", "Train"), ("test", "Test")):
        path = out / f"{split}.zip"
        with zipfile.ZipFile(path, "w") as z:
            for f in sorted((src / folder).rglob("*.bin")):
                z.write(f, str(f.relative_to(src)))
            for name, data in (extra or {}).items():
                if name.startswith((folder, "..")):
                    z.writestr(name, data)
        md5[split] = nmnist.md5sum(path)
    return md5


def fake_resources(md5, url="http://127.0.0.1:9/nmnist"):
    return {s: {"url": f"{url}/{s}.zip", "filename": f"{s}.zip", "md5": m,
                "folder": {"train": "Train", "test": "Test"}[s]} for s, m in md5.items()}


def corrupt_member(zip_path: Path, member: str) -> None:
    """Flip bytes inside a stored member's data so its CRC fails on reading."""
    with zipfile.ZipFile(zip_path) as z:
        info = z.getinfo(member)
    data = bytearray(zip_path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start:start + 4] = b"\xff\xff\xff\xff"
    zip_path.write_bytes(bytes(data))


def test_from_zips_untrusted_members_and_unreadable_member(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_tree(src, corrupt=False)
    md5 = make_zips(src, tmp_path / "zips", extra={"../evil.bin": b"x" * 5,
                                                   "Train/../../evil2.bin": b"x" * 5})
    corrupt_member(tmp_path / "zips" / "train.zip", "Train/4/40000.bin")
    md5["train"] = nmnist.md5sum(tmp_path / "zips" / "train.zip")
    monkeypatch.setattr(nmnist, "tonic_resources", lambda: fake_resources(md5))
    root = tmp_path / "data"
    download_nmnist(root, from_dir=tmp_path / "zips", progress=False, echo=lambda s: None)
    folder = root / "NMNIST"
    assert (folder / "train.zip").is_file() and (folder / "test.zip").is_file()  # kept
    assert not (tmp_path / "evil.bin").exists() and not (root / "evil.bin").exists()
    assert not (tmp_path / "evil2.bin").exists() and not (root / "evil2.bin").exists()
    summary = preprocess_nmnist(root, progress=False, echo=lambda s: None)
    names = {c["path"]: c["why"] for c in summary["train"]["corrupt_files"]}
    assert "Train/4/40000.bin" in names and "unreadable" in names["Train/4/40000.bin"]
    assert any("written outside" in why for why in names.values())
    assert summary["train"]["recordings"] == 19


def test_from_zips_with_a_wrong_md5_places_nothing(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_tree(src, corrupt=False)
    md5 = make_zips(src, tmp_path / "zips")
    monkeypatch.setattr(nmnist, "tonic_resources",
                        lambda: fake_resources({**md5, "test": "0" * 32}))
    with pytest.raises(ChecksumError, match="test.zip has md5"):
        download_nmnist(tmp_path / "data", from_dir=tmp_path / "zips", progress=False)
    assert not list((tmp_path / "data" / "NMNIST").glob("*.zip"))


def test_offline_download_is_one_message_naming_urls_files_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(nmnist, "tonic_resources",
                        lambda: fake_resources({"train": "a" * 32, "test": "b" * 32}))
    with pytest.raises(DownloadError) as e:
        download_nmnist(tmp_path, progress=False)
    msg = str(e.value)
    for want in ("http://127.0.0.1:9/nmnist/train.zip", "http://127.0.0.1:9/nmnist/test.zip",
                 "a" * 32, "b" * 32, "--from DIR", str(tmp_path / "NMNIST")):
        assert want in msg, want
    assert not list((tmp_path / "NMNIST").glob("*.zip"))


def test_urls_and_md5_come_from_tonic():
    from tonic.datasets import NMNIST as Tonic

    res = nmnist.tonic_resources()
    assert res["train"]["url"] == Tonic.train_url and res["test"]["md5"] == Tonic.test_md5


def test_tonic_finds_the_same_files(tmp_path, monkeypatch):
    from tonic.datasets import NMNIST as Tonic

    src = tmp_path / "src"
    write_tree(src, corrupt=False)
    md5 = make_zips(src, tmp_path / "zips")
    monkeypatch.setattr(nmnist, "tonic_resources", lambda: fake_resources(md5))
    root = tmp_path / "data"
    download_nmnist(root, from_dir=tmp_path / "zips", progress=False, echo=lambda s: None)
    preprocess_nmnist(root, progress=False, echo=lambda s: None)
    # tonic wants 10,000 recordings before it trusts a folder; these fixtures have 20
    monkeypatch.setattr(Tonic, "_folder_contains_at_least_n_files_of_type", lambda *a: True)
    monkeypatch.setattr(Tonic, "download", lambda self: pytest.fail("tonic downloaded"))
    ds = Tonic(save_to=str(root), train=True)
    store = Store(root / "NMNIST" / "cache" / "train")
    assert len(ds) == len(store) and ds.targets == store.records["label"].tolist()
    events, label = ds[5]
    got = store.gather("events", [5])
    assert label == store.records["label"][5]
    for f in ("x", "y", "p", "t"):
        assert np.array_equal(events[f], got[f][0])


def test_interrupted_preprocess_leaves_no_cache(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_tree(src, corrupt=False)
    root = tmp_path / "data"
    download_nmnist(root, from_dir=src, progress=False, echo=lambda s: None)
    real, calls = nmnist.decode_recording, []

    def dies(raw, source=""):
        calls.append(source)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(raw, source)

    monkeypatch.setattr(nmnist, "decode_recording", dies)
    with pytest.raises(KeyboardInterrupt):
        preprocess_nmnist(root, progress=False, echo=lambda s: None)
    cache = root / "NMNIST" / "cache"
    assert not Store.exists(cache / "train") and not any(cache.iterdir())
    monkeypatch.setattr(nmnist, "decode_recording", real)
    assert preprocess_nmnist(root, progress=False, echo=lambda s: None)["train"]["recordings"] == 20


# --- the split behind the batch interface ------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    src = tmp_path / "src"
    write_tree(src, per_digit=(4, 1), corrupt=False)
    root = tmp_path / "data"
    download_nmnist(root, from_dir=src, progress=False, echo=lambda s: None)
    preprocess_nmnist(root, progress=False, echo=lambda s: None)
    return Store(root / "NMNIST" / "cache" / "train")


def test_batch_is_the_recordings_padded_in_ms(store):
    split = EventSplit(store, rho=1.0)
    b = split.batch(torch.tensor([3, 0]))
    assert b.x.shape[0] == 2 and b.x.shape[2] == 2 and b.t.dtype == torch.float64
    for row, rec in enumerate([3, 0]):
        ev = store.gather("events", [rec])
        n = len(ev["t"][0])
        assert b.lengths[row] == n
        assert torch.equal(b.x[row, :n, 0], torch.from_numpy(
            (ev["y"][0].astype(np.int64) * 34 + ev["x"][0]).astype(np.float32)))
        assert torch.equal(b.x[row, :n, 1], torch.from_numpy(2.0 * ev["p"][0] - 1.0).float())
        assert torch.allclose(b.t[row, :n], torch.from_numpy(ev["t"][0] / 1000.0))
        assert (b.x[row, n:] == 0).all() and (b.t[row, n:] == 0).all()
    assert b.y.tolist() == [store.records["label"][3], store.records["label"][0]]
    assert split.lengths.tolist() == store.lengths("events").tolist()


def test_rho_drop_is_keyed_nested_and_fresh_per_training_epoch(store):
    test_a = EventSplit(store, rho=0.75, seed=3)
    test_b = EventSplit(store, rho=0.4, seed=3)
    full = EventSplit(store, rho=1.0)
    idx = torch.arange(len(store))
    a, b, f = test_a.batch(idx), test_b.batch(idx), full.batch(idx)
    assert torch.equal(a.x, EventSplit(store, rho=0.75, seed=3).batch(idx).x)  # repeatable
    # the same recording gives the same drop whatever the batch it is in
    alone = test_a.batch(torch.tensor([5]))
    assert torch.equal(alone.t[0, :alone.lengths[0]], a.t[5, :a.lengths[5]])
    kept = a.lengths.sum().item() / f.lengths.sum().item()
    assert 0.65 < kept < 0.85 and 0.3 < b.lengths.sum().item() / f.lengths.sum().item() < 0.5
    for r in range(len(store)):  # events kept at 0.4 are a subset of those kept at 0.75
        t04 = set(b.t[r, :b.lengths[r]].tolist())
        assert t04 <= set(a.t[r, :a.lengths[r]].tolist())
    train = EventSplit(store, rho=0.75, seed=3, train=True)
    train.set_epoch(1)
    e1 = train.batch(idx)
    train.set_epoch(2)
    e2 = train.batch(idx)
    assert not torch.equal(e1.lengths, e2.lengths)
    train.set_epoch(1)
    assert torch.equal(train.batch(idx).x, e1.x)
    test_a.set_epoch(5)  # a test split keeps its one draw
    assert torch.equal(test_a.batch(idx).x, a.x)
    with pytest.raises(ValueError, match="data.rho"):
        EventSplit(store, rho=0.0)


def test_stratified_subset():
    labels = np.repeat(np.arange(10), [100, 90, 80, 70, 60, 50, 40, 30, 20, 10])
    idx = stratified_subset(labels, 55, seed=0)
    assert len(idx) == 55 and len(set(idx.tolist())) == 55
    counts = np.bincount(labels[idx], minlength=10)
    assert counts.tolist() == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert np.array_equal(idx, stratified_subset(labels, 55, seed=0))
    assert len(stratified_subset(labels, None, 0)) == 550


def test_load_split_reads_the_cache_with_subset_and_rho(store, tmp_path):
    from plstm_repro.config import DataConfig

    cfg = DataConfig(name="nmnist", root=str(tmp_path / "data"), n_train=20, n_test=5, rho=0.5)
    tr = load_split(cfg, "train", seed=0)
    te = load_split(cfg, "test", seed=0)
    assert len(tr) == 20 and len(te) == 5 and tr.rho == 0.5 and tr.train and not te.train
    assert np.bincount(tr.y.numpy(), minlength=10).tolist() == [2] * 10
    missing = DataConfig(name="synthetic-nmnist", root=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="plstm download synthetic-nmnist"):
        load_split(missing, "train", 0)


def test_synthetic_recordings_go_through_the_same_path(tmp_path):
    from plstm_repro.data.synthetic_nmnist import generate_synthetic_nmnist

    generate_synthetic_nmnist(tmp_path, limit=20, progress=False, echo=lambda s: None)
    summary = preprocess_nmnist(tmp_path, progress=False, echo=lambda s: None, source=SYNTHETIC)
    assert summary["train"]["recordings"] == 16 and summary["train"]["corrupt"] == 0
    assert 2000 < summary["train"]["mean_events"] < 9000
    store = Store(SYNTHETIC.store_path(tmp_path, "train"))
    # recordings 3 and 10 carry an overflow marker (i % 7 == 3): their times stay sorted, in
    # three saccades of 100 ms
    for i in range(len(store)):
        t = store.gather("events", [i])["t"][0]
        assert np.all(np.diff(t.astype(np.int64)) >= 0) and t.max() < 300_000
    assert (tmp_path / "SyntheticNMNIST" / "Train").is_dir() and not (tmp_path / "NMNIST").exists()
    assert json.loads((SYNTHETIC.store_path(tmp_path, "test") / "meta.json").read_text())["n"] == 4
    assert NMNIST.folder == "NMNIST"


# --- the whole path through the CLI ------------------------------------------------------------

def test_cli_download_preprocess_train_eval_plot(tmp_path, monkeypatch):
    """As a user would, on recordings the project has never seen, some corrupt: download
    --from, preprocess (counts, corrupt files named), train the three models of Table 1, eval
    a checkpoint at rho 0.4 and 1.0, plot Table 1 (smoke scale: plumbing, not results)."""
    from test_cli import invoke, ok

    from plstm_repro.tracking import MlflowTracker

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "src")
    assert "nmnist is in data/NMNIST" in ok("download", "nmnist", "--from", "src",
                                            "--no-progress")
    out = ok("preprocess", "nmnist", "--no-progress")
    assert "train: 20 recordings" in out and "3 corrupt" in out and "truncated.bin" in out
    assert "missing digit folder data/NMNIST/Test/7" in out
    out = ok("reproduce", "table1", "--scale", "smoke", "--no-progress")
    assert out.count("done  table1") == 3
    runs = [r for r in MlflowTracker(root=tmp_path / "runs").runs("table1")
            if r.data.tags.get("plstm.role") != "parent"]  # the grid points, not their parent
    by = {r.data.tags["variant"]: r for r in runs}
    assert set(by) == {"CNN", "BN-LSTM", "Phased LSTM"}
    for name, r in by.items():
        m = r.data.metrics
        assert {"test_acc", "rho_0.4/test_acc", "rho_1.0/test_acc"} <= set(m), name
        assert ("updates_per_neuron" in m) == (name != "CNN")
    # BN-LSTM updates every neuron at every kept event; the Phased LSTM far fewer
    bn, pl = by["BN-LSTM"].data.metrics, by["Phased LSTM"].data.metrics
    assert pl["updates_per_neuron"] < 0.2 * bn["updates_per_neuron"]
    assert bn["rho_0.4/updates_per_neuron"] < bn["updates_per_neuron"] < \
        bn["rho_1.0/updates_per_neuron"]
    rid = by["Phased LSTM"].info.run_id[:8]
    for rho in ("0.4", "1.0"):
        assert "test_acc" in ok("eval", rid, "--set", f"data.rho={rho}")
    res, text = invoke("eval", rid, "--set", "model.hidden_size=4")
    assert res.exit_code == 2 and "may only change data.*" in text
    out = ok("plot", "table1", "--scale", "smoke")
    fig = tmp_path / "runs" / "figures" / "table1" / "smoke"
    for ext in ("md", "csv", "tex", "png", "pdf"):
        assert (fig / f"table1.{ext}").stat().st_size > 0, ext
    md = (fig / "table1.md").read_text()
    assert "| Test with rho = 0.4 |" in md and "90.67 ± 0.30" in md  # the paper's CNN, beside
    res, text = invoke("download", "nmnist", "--from", "nowhere")
    assert res.exit_code == 2 and "nowhere is not a folder" in text


def test_cli_preprocess_reads_the_data_root_however_it_is_given(tmp_path, monkeypatch):
    """Issue 22: `preprocess nmnist --set data.root=X` reads X (it used to read ./data and ask
    for a download), as --root X does; both, naming different folders, is a one-line error."""
    from test_cli import invoke, ok

    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "src")
    ok("download", "nmnist", "--from", "src", "--root", "elsewhere", "--no-progress")
    out = ok("preprocess", "nmnist", "--set", "data.root=elsewhere", "--no-progress")
    assert "train: 20 recordings" in out
    out = ok("preprocess", "nmnist", "--root", "elsewhere", "--set", "data.root=elsewhere/",
             "--no-progress")
    assert '"recordings": 20' in out and '"cached": true' in out
    res, out = invoke("preprocess", "nmnist", "--root", "data", "--set",
                      "data.root=elsewhere", "--no-progress")
    assert res.exit_code == 2 and "--root data and --set data.root=elsewhere" in out
    assert "Traceback" not in out and len(set(out.strip().splitlines())) == 1
