"""Untrusted input, round two (issue 19): archive bombs, truncated tars, bad member names,
caches that must see their inputs change, bounded decoding. Every archive is crafted here, small;
a "bomb" is a small archive against small ceilings passed in."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from plstm_repro.data import archives
from plstm_repro.data.archives import ArchiveError, extract_archive

KB = 1024


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def dead_pid() -> int:
    """The pid of a process that has ended (for temp names of a killed process)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --- archive bombs ------------------------------------------------------------------------

def _zeros_zip(path: Path, members: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, size in members.items():
            zf.writestr(name, bytes(size))
    return path


def test_a_member_over_its_ceiling_stops_the_extraction_naming_member_and_limit(tmp_path):
    z = _zeros_zip(tmp_path / "s3.mpg_vcd.zip", {"s3/a.mpg": 10 * KB, "s3/bomb.mpg": 300 * KB})
    assert z.stat().st_size < 3 * KB
    limits = archives.Limits(member=((".mpg", 100 * KB),))
    out = tmp_path / "out"
    with pytest.raises(ArchiveError) as e:
        extract_archive(z, out, limits=limits)
    msg = str(e.value)
    assert "\n" not in msg and "s3/bomb.mpg" in msg and "100.0 KB" in msg and "s3.mpg_vcd" in msg
    assert "s3/bomb.mpg" not in " ".join(_files(out))  # nothing of it, partial or whole


def test_ratio_total_and_free_disk_limits_stop_before_writing(tmp_path, monkeypatch):
    z = _zeros_zip(tmp_path / "a.zip", {f"s1/{i}.wav": 40 * KB for i in range(4)})
    out = tmp_path / "out"
    ratio = archives.Limits(ratio=10, ratio_floor=0)
    with pytest.raises(ArchiveError, match=r"a\.zip.*10x the archive"):
        extract_archive(z, out, limits=ratio)
    with pytest.raises(ArchiveError, match=r"a\.zip.*total limit of 100\.0 KB"):
        extract_archive(z, out, limits=archives.Limits(total=100 * KB))
    assert _files(out) == []
    usage = archives.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(archives.shutil, "disk_usage",
                        lambda p: usage._replace(free=50 * KB))
    with pytest.raises(ArchiveError, match="free disk space"):
        extract_archive(z, out, limits=archives.Limits(reserve=0))
    assert _files(out) == []


def _tar_total_bomb(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        for i in range(3):
            ti = tarfile.TarInfo(f"align/{i}.align")
            ti.size = 30 * KB
            tf.addfile(ti, io.BytesIO(bytes(ti.size)))


def test_a_tar_past_its_total_keeps_what_was_whole_and_names_the_member(tmp_path):
    _tar_total_bomb(tmp_path / "s1.tar")
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"member align/1\.align .*total limit of 50\.0 KB"):
        extract_archive(tmp_path / "s1.tar", out, limits=archives.Limits(total=50 * KB))
    assert _files(out) == ["align/0.align"]


def _sparse_tar(path: Path, realsize: int) -> None:
    """A GNU sparse member storing one 512-byte block of a file declared ``realsize`` bytes."""
    ti = tarfile.TarInfo("video/s1/sparse.mpg")
    ti.type, ti.size = tarfile.GNUTYPE_SPARSE, 512
    buf = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    def num(n: int) -> bytes:  # octal, or base-256 past 8 GB, as GNU tar writes them
        return tarfile.itn(n, 12, tarfile.GNU_FORMAT)

    buf[386:398] = num(realsize - 512)  # one region: the last 512 bytes
    buf[398:410] = num(512)
    buf[483:495] = num(realsize)
    buf[148:156] = b" " * 8
    buf[148:155] = b"%06o\0" % sum(buf)
    ok = tarfile.TarInfo("video/s1/ok.mpg")
    ok.size = 4
    with open(path, "wb") as f:
        f.write(bytes(buf) + b"x" * 512 + ok.tobuf() + b"data".ljust(512, b"\0") + bytes(10240))


def test_a_sparse_member_is_refused_not_written(tmp_path):
    _sparse_tar(tmp_path / "s1.tar", 8 << 20)
    with tarfile.open(tmp_path / "s1.tar") as tf:
        assert tf.getmember("video/s1/sparse.mpg").size == 8 << 20  # what it declares
    n, refused = extract_archive(tmp_path / "s1.tar", tmp_path / "out")
    assert n == 1 and refused == ["video/s1/sparse.mpg: a sparse file, refused"]
    assert _files(tmp_path / "out") == ["video/s1/ok.mpg"]


# --- truncated plain tars -----------------------------------------------------------------

def _members(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        ti = tarfile.TarInfo(f"align/{i}.align")
        data = f"0 100 sil {i}\n".encode()
        ti.size = len(data)
        out.append(ti.tobuf() + data.ljust(512, b"\0"))
    return out


def test_a_tar_cut_at_a_member_boundary_is_truncated(tmp_path):
    m = _members(3)
    (tmp_path / "whole.tar").write_bytes(b"".join(m) + bytes(1024))
    assert extract_archive(tmp_path / "whole.tar", tmp_path / "w")[0] == 3
    (tmp_path / "s1.tar").write_bytes(b"".join(m[:2]))
    with pytest.raises(ArchiveError, match=r"s1\.tar is truncated") as e:
        extract_archive(tmp_path / "s1.tar", tmp_path / "out")
    assert "\n" not in str(e.value)


def test_a_tar_with_a_garbage_header_is_corrupt(tmp_path):
    m = _members(3)
    (tmp_path / "s1.tar").write_bytes(m[0] + b"garbage!" * 64 + m[1] + m[2] + bytes(1024))
    with tarfile.open(tmp_path / "s1.tar") as tf:  # what tarfile alone says: one member, fine
        assert len(tf.getmembers()) == 1
    with pytest.raises(ArchiveError, match=r"s1\.tar is corrupt: an unreadable header at "
                                           r"byte 1024"):
        extract_archive(tmp_path / "s1.tar", tmp_path / "out")


# --- bad names ----------------------------------------------------------------------------

def _mark_last_member_encrypted(z: Path) -> None:
    """Set bit 0 (encrypted) of the last member's flags, in its local and central headers
    (zipfile writes no encrypted members itself)."""
    data = bytearray(z.read_bytes())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.rfind(sig) + at] |= 0x1
    z.write_bytes(bytes(data))


def test_names_a_store_cannot_hold_are_refused_and_printed_escaped(tmp_path):
    z = tmp_path / "s3.zip"
    long = "s3/" + "a" * 300 + ".mpg"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("s3/good.mpg", b"v")
        zf.writestr("s3/evil\nid.mpg", b"v")
        zf.writestr("s3/\x1b[2Jclear.mpg", b"v")
        zf.writestr(long, b"v")
        zf.writestr("s3/f.mpg", b"v")
        zf.writestr("s3/f.mpg/g.mpg", b"v")  # a folder where a file already is
        zf.writestr("s3/locked.mpg", b"v")
    _mark_last_member_encrypted(z)
    n, refused = extract_archive(z, tmp_path / "out")
    assert n == 2 and _files(tmp_path / "out") == ["s3/f.mpg", "s3/good.mpg"]
    text = "\n".join(refused)
    assert "\x1b" not in text and len(refused) == 5, refused
    assert "s3/evil\\nid.mpg: a control character" in text
    assert "s3/\\x1b[2Jclear.mpg: a control character" in text
    assert "name part longer than 255 bytes" in text
    assert "s3/f.mpg/g.mpg: clashes with a file or folder" in text
    assert "s3/locked.mpg: encrypted" in text
    assert "corrupt" not in text


def test_a_tar_name_with_a_newline_is_refused_the_rest_kept(tmp_path):
    with tarfile.open(tmp_path / "s1.tar", "w") as tf:
        for name in ("Train/5/bad\nname.bin", "Train/5/good.bin"):
            ti = tarfile.TarInfo(name)
            ti.size = 5
            tf.addfile(ti, io.BytesIO(bytes(5)))
    n, refused = extract_archive(tmp_path / "s1.tar", tmp_path / "out")
    assert n == 1 and refused == [("Train/5/bad\\nname.bin: a control character (newline, "
                                   "escape, ...) in its name, refused")]


def test_partial_files_of_a_dead_process_are_removed_a_live_ones_kept(tmp_path):
    out = tmp_path / "out" / "s3"
    out.mkdir(parents=True)
    dead, live = out / f".a.mpg.part-{dead_pid()}", out / f".b.mpg.part-{os.getppid()}"
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    _zeros_zip(tmp_path / "s3.zip", {"s3/c.mpg": 10})
    extract_archive(tmp_path / "s3.zip", tmp_path / "out")
    assert not dead.exists() and live.exists()


# --- N-MNIST: decoding, caches, unfinished trees -------------------------------------------

def _nmnist():
    from plstm_repro.data import nmnist

    return nmnist


def _records(rng, n: int, markers: int = 0):
    """n valid events with ``markers`` overflow markers spread among them, as raw bytes."""
    rec = np.zeros((n, 5), dtype=np.uint8)
    rec[:, 0], rec[:, 1] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    rec[:, 2:] = rng.integers(0, 256, (n, 3))
    at = np.sort(rng.integers(0, n + 1, markers))
    marker = np.array([0, 240, 0, 0, 0], dtype=np.uint8)
    return np.insert(rec, at, marker, axis=0).tobytes()


def test_our_decoder_equals_tonics_reader_on_valid_files():
    from tonic.datasets import NMNIST as TonicNMNIST
    from tonic.io import read_mnist_file

    nm = _nmnist()
    rng = np.random.default_rng(0)
    for n, markers in ((1, 0), (50, 3), (400, 40), (1000, 0), (7, 12)):
        raw = _records(rng, n, markers)
        ours = nm.read_events(raw)
        ref = read_mnist_file(io.BytesIO(raw), dtype=TonicNMNIST.dtype, is_stream=True)
        for f in ("x", "y", "p", "t"):
            assert np.array_equal(ours[f], ref[f].astype(np.int64)), (n, markers, f)


def test_overflow_markers_decode_in_linear_time():
    import time

    raw = _records(np.random.default_rng(1), 2000, 200_000)  # 1 MB, 200,000 markers
    t0 = time.perf_counter()
    ev = _nmnist().decode_recording(raw)
    assert time.perf_counter() - t0 < 0.5  # tonic's per-marker loop: ~2 s, ours ~20 ms
    assert len(ev["t"]) == 2000


def test_timestamps_past_2_pow_32_us_are_corrupt(monkeypatch):
    nm = _nmnist()
    monkeypatch.setattr(nm.fmt, "RECORDING_MAX_BYTES", 4 << 20)
    raw = bytes([0, 240, 0, 0, 0]) * (2 ** 19)
    raw += bytes([1, 1, 0, 0, 5])  # one event after 2^19 markers: 2^32 + 5 us
    with pytest.raises(nm.CorruptRecording, match=r"beyond 2\^32 us"):
        nm.decode_recording(raw)


def _tree(root: Path, per_digit: int = 2) -> None:
    nm = _nmnist()
    rng = np.random.default_rng(3)
    for split in ("Train", "Test"):
        for d in range(10):
            for i in range(per_digit):
                p = root / split / str(d) / f"{d}{i:04d}.bin"
                p.parent.mkdir(parents=True, exist_ok=True)
                n = int(rng.integers(5, 20))
                p.write_bytes(nm.encode_events(rng.integers(0, 34, n), rng.integers(0, 34, n),
                                               rng.integers(0, 2, n),
                                               np.sort(rng.integers(0, 100_000, n))))


def _placed(tmp_path: Path) -> Path:
    nm = _nmnist()
    _tree(tmp_path / "src")
    root = tmp_path / "data"
    nm.download_nmnist(root, from_dir=tmp_path / "src", progress=False, echo=lambda s: None)
    return root


def test_a_bad_name_or_an_oversized_recording_is_skipped_and_named_the_rest_cached(
        tmp_path, monkeypatch):
    nm = _nmnist()
    root = _placed(tmp_path)
    train = root / "NMNIST" / "Train"
    (train / "5" / "bad\nname.bin").write_bytes((train / "5" / "50000.bin").read_bytes())
    (train / "6" / "huge.bin").write_bytes(bytes([1, 1, 0, 0, 1]) * 400)
    monkeypatch.setattr(nm.fmt, "RECORDING_MAX_BYTES", 1000)
    said = []
    out = nm.preprocess_nmnist(root, progress=False, echo=said.append)
    assert out["train"]["recordings"] == 20 and out["train"]["corrupt"] == 2
    text = "\n".join(said)
    assert "skipped Train/5/bad\\nname.bin: a control character" in text
    assert "skipped Train/6/huge.bin: 2000 bytes, over the 1000 bytes" in text


def test_the_cache_sees_its_inputs_change(tmp_path):
    nm = _nmnist()
    root = _placed(tmp_path)
    said = []
    assert nm.preprocess_nmnist(root, progress=False, echo=said.append)["train"]["recordings"] == 20
    assert nm.preprocess_nmnist(root, progress=False, echo=said.append)["train"]["cached"]
    extra = root / "NMNIST" / "Train" / "1" / "19999.bin"
    extra.write_bytes((root / "NMNIST" / "Train" / "1" / "10000.bin").read_bytes())
    again = nm.preprocess_nmnist(root, progress=False, echo=said.append)
    assert not again["train"].get("cached") and again["train"]["recordings"] == 21
    assert again["test"]["cached"]  # unchanged inputs: still its cache
    assert any("changed since the cache was made" in s for s in said)


def test_a_tree_whose_extraction_did_not_finish_is_refused(tmp_path):
    from plstm_repro.data.download import DownloadError

    nm = _nmnist()
    root = _placed(tmp_path)
    (root / "NMNIST" / "Train" / ".extracting").write_text(f"{dead_pid()}\n")
    (root / "NMNIST" / "Train" / ".extracted").unlink()
    with pytest.raises(DownloadError, match="did not finish"):
        nm.preprocess_nmnist(root, progress=False, echo=lambda s: None)
    assert not (root / "NMNIST" / "cache" / "train").exists()


def test_stale_store_folders_of_dead_processes_are_removed(tmp_path):
    nm = _nmnist()
    root = _placed(tmp_path)
    cache = root / "NMNIST" / "cache"
    dead, live = cache / f".train.tmp-{dead_pid()}", cache / f".test.tmp-{os.getppid()}"
    dead.mkdir(parents=True), live.mkdir()
    nm.preprocess_nmnist(root, progress=False, echo=lambda s: None)
    assert not dead.exists() and live.exists()


def _nmnist_zips(tmp_path: Path, monkeypatch, rename=lambda name: name) -> Path:
    """train.zip and test.zip of a small tree (member names through ``rename``), declared as
    tonic's resources."""
    nm = _nmnist()
    _tree(tmp_path / "src")
    zips = tmp_path / "zips"
    zips.mkdir()
    md5 = {}
    for split, folder in (("train", "Train"), ("test", "Test")):
        with zipfile.ZipFile(zips / f"{split}.zip", "w") as zf:
            for f in sorted((tmp_path / "src" / folder).rglob("*.bin")):
                zf.write(f, rename(str(f.relative_to(tmp_path / "src"))))
        md5[split] = nm.md5sum(zips / f"{split}.zip")
    monkeypatch.setattr(nm, "tonic_resources", lambda: {
        s: {"url": f"http://127.0.0.1:9/{s}.zip", "filename": f"{s}.zip", "md5": m,
            "folder": {"train": "Train", "test": "Test"}[s]} for s, m in md5.items()})
    return zips


def test_a_symlinked_split_folder_is_an_error_not_an_empty_extraction(tmp_path, monkeypatch):
    from plstm_repro.data.download import DownloadError

    nm = _nmnist()
    zips = _nmnist_zips(tmp_path, monkeypatch)
    root = tmp_path / "data"
    (root / "NMNIST").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "NMNIST" / "Train").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DownloadError, match="symbolic link"):
        nm.download_nmnist(root, from_dir=zips, progress=False, echo=lambda s: None)
    assert not (tmp_path / "elsewhere" / ".extracted").exists()
    assert not list((tmp_path / "elsewhere").rglob("*.bin"))


def test_a_zip_whose_every_member_is_refused_is_not_an_extraction(tmp_path, monkeypatch):
    from plstm_repro.data.download import DownloadError

    nm = _nmnist()
    zips = _nmnist_zips(tmp_path, monkeypatch, rename=lambda n: n.replace(".bin", "\x1b.bin"))
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"no recording could be extracted") as e:
        nm.download_nmnist(root, from_dir=zips, progress=False, echo=lambda s: None)
    assert "\x1b" not in str(e.value) and "\\x1b" in str(e.value)
    assert not (root / "NMNIST" / "Train" / ".extracted").exists()
    with pytest.raises(DownloadError, match="did not finish"):
        nm.preprocess_nmnist(root, progress=False, echo=lambda s: None)


# --- GRID: bounded video decoding, bad names in a --from folder, speakers ------------------

def test_a_video_past_the_frames_grid_needs_is_named_and_not_decoded_further(tmp_path,
                                                                             monkeypatch):
    pytest.importorskip("cv2")
    from grid_fixtures import frames, write_mpg

    from plstm_repro.data import grid

    video = write_mpg(tmp_path / "s1" / "long.mpg", frames(12) + frames(12, seed=1))
    monkeypatch.setattr(grid.video, "MAX_FRAMES", 10)
    with pytest.raises(grid._Broken, match=r"long\.mpg: 24 frames declared, over 10") as e:
        grid.read_face_crops(video)
    assert e.value.kind == "video_too_long"
    # a container that does not declare its length: decoding stops after 10 frames
    monkeypatch.setattr(grid.video, "_check_video_size", lambda cap, path, cv2: None)
    seen = []
    real = grid.detect_face
    monkeypatch.setattr(grid.video, "detect_face", lambda g, near=None: seen.append(1) or real(g, near))
    with pytest.raises(grid._Broken, match="more than 10 frames"):
        grid.read_face_crops(video)
    assert len(seen) == 10


def test_a_bad_file_name_in_a_from_folder_is_skipped_and_named(tmp_path):
    from plstm_repro.data import grid

    src = tmp_path / "site"
    for sid in ("bbaf2n", "bbaf3s"):
        for p, text in ((src / f"video/s1/{sid}.mpg", "v"), (src / f"audio/s1/{sid}.wav", "a"),
                        (src / f"align/s1/align/{sid}.align", "0 1 sil\n")):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    (src / "video/s1/evil\nid.mpg").write_text("v")
    (src / "video/s1/\x1b[2Jx.mpg").write_text("v")
    said = []
    dest = grid.download_grid(tmp_path / "data", from_dir=src, echo=said.append)
    assert sorted(p.name for p in (dest / "s1" / "video").iterdir()) == ["bbaf2n.mpg",
                                                                         "bbaf3s.mpg"]
    text = "\n".join(said)
    assert "evil\\nid.mpg: a control character" in text and "\x1b" not in text


def test_a_huge_speaker_range_is_one_short_line():
    from plstm_repro.data import parse_speakers

    with pytest.raises(ValueError) as e:
        parse_speakers("1-1000000")
    assert len(str(e.value)) < 100 and "1-34" in str(e.value)
    assert parse_speakers("1-4,7") == [1, 2, 3, 4, 7]


def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path):
    from plstm_repro.data import grid

    dest = tmp_path / "data" / "GRID"
    dead = dest / f".staging-{dead_pid()}"
    (dead / "000").mkdir(parents=True)
    src = tmp_path / "site"
    for p in (src / "video/s1/bbaf2n.mpg", src / "audio/s1/bbaf2n.wav",
              src / "align/s1/align/bbaf2n.align"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    grid.download_grid(tmp_path / "data", from_dir=src, echo=lambda s: None)
    assert not dead.exists()


# --- checkpoints ----------------------------------------------------------------------------

def test_a_full_disk_under_the_checkpoints_is_one_line_and_leaves_no_temp_file(tmp_path):
    from plstm_repro.errors import UserError
    from plstm_repro.train import save_checkpoint

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (writes to it fail with ENOSPC)")
    path = tmp_path / "checkpoints" / "r1" / "last.pt"
    path.parent.mkdir(parents=True)
    tmp = path.with_name(f"last.pt.tmp{os.getpid()}")
    tmp.symlink_to("/dev/full")  # what this process writes next lands on a full device
    with pytest.raises(UserError) as e:
        save_checkpoint(path, config={}, model={"w": torch.zeros(1000)})
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "No space left on device" in msg
    assert not tmp.exists() and not tmp.is_symlink() and not path.exists()


def test_checkpoint_temp_files_of_dead_processes_are_removed(tmp_path):
    from plstm_repro.train import save_checkpoint

    path = tmp_path / "last.pt"
    dead, live = tmp_path / f"last.pt.tmp{dead_pid()}", tmp_path / f"last.pt.tmp{os.getppid()}"
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    save_checkpoint(path, config={}, model={})
    assert path.is_file() and not dead.exists() and live.exists()


def test_a_checkpoint_holding_code_gets_no_advice_to_load_it_unsafely(tmp_path):
    from plstm_repro.errors import CheckpointError
    from plstm_repro.train import load_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    evil = tmp_path / "x.pt"
    torch.save({"config": {}, "model": Payload()}, evil)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(evil)
    msg = str(e.value)
    assert "weights_only" not in msg and "\n" not in msg
    assert f"{evil} was refused: it needs posix.getcwd" in msg and "never loaded" in msg


def test_another_models_state_is_one_line_naming_the_file(tmp_path):
    from plstm_repro.errors import CheckpointError
    from plstm_repro.train import restore_state

    state = torch.nn.Linear(3, 4).state_dict()
    with pytest.raises(CheckpointError) as e:
        restore_state(torch.nn.Linear(3, 5), state, tmp_path / "last.pt")
    msg = str(e.value)
    assert "\n" not in msg and "last.pt does not fit this model" in msg and "size mismatch" in msg
    with pytest.raises(CheckpointError, match="does not fit"):
        restore_state(torch.nn.GRU(3, 4), state, tmp_path / "last.pt")


def test_resume_of_a_run_another_process_holds_fails_and_says_when_it_can_be_taken(tmp_path,
                                                                                  monkeypatch):
    import time

    from plstm_repro import runner
    from plstm_repro.config import flat, spec_hash
    from plstm_repro.errors import UserError
    from plstm_repro.runner import resolve_train_config
    from plstm_repro.runner import train as run_train
    from plstm_repro.sweep import leases
    from plstm_repro.tracking import HEARTBEAT_TAG, MlflowTracker

    cfg, _ = resolve_train_config("sines", "phased", "smoke", 0, [])
    tr = MlflowTracker(root=tmp_path)
    tr.start("train-sines", "held", flat(cfg), {"spec_hash": spec_hash(cfg),
                                                 leases.LEASE_TAG: "otherhost:123:x",
                                                 HEARTBEAT_TAG: str(int(time.time()) - 30)})
    monkeypatch.setattr(runner, "MlflowTracker", lambda root: tr)  # one store set-up, not two
    with pytest.raises(UserError) as e:
        run_train("sines", "phased", "smoke", 0, [], resume=True, root=tmp_path,
                  progress=False, echo=lambda s: None)
    msg = str(e.value)
    assert "\n" not in msg and "otherhost" in msg and "nothing trained" in msg
    assert re.search(r"resumable, once it is 120 s old: in about (\d+) s", msg)
    assert 60 <= int(re.search(r"in about (\d+) s", msg).group(1)) <= 90


def test_sigterm_during_download_does_not_speak_of_runs(tmp_path, monkeypatch):
    import signal

    from typer.testing import CliRunner

    from plstm_repro import data
    from plstm_repro.cli import app

    def killed(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(data, "download_dataset", killed)
    res = CliRunner().invoke(app, ["download", "nmnist", "--root", str(tmp_path)])
    assert res.exit_code == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM)" in res.output and "KILLED" not in res.output
    assert "--resume" not in res.output


def test_a_full_disk_under_a_store_names_it_and_leaves_nothing(tmp_path):
    from plstm_repro.data.store import Store, StoreWriter

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    dead = tmp_path / f".old.tmp-{dead_pid()}"
    dead.mkdir()
    path = tmp_path / "train"
    with pytest.raises(OSError) as e, StoreWriter(path, {"events": {"x": "u1"}}) as w:
        w._files[("events", "x")].close()
        w._files[("events", "x")] = open("/dev/full", "wb", buffering=0)  # noqa: SIM115
        w.add("a", events={"x": np.zeros(10)})
    msg = str(e.value)
    assert str(path) in msg and "No space left on device" in msg and "\n" not in msg
    assert not Store.exists(path) and list(tmp_path.iterdir()) == []  # the dead one too


def test_a_wav_or_video_over_what_grid_holds_is_skipped_before_decoding(tmp_path, monkeypatch):
    from plstm_repro.data import grid

    monkeypatch.setattr(grid.manifest, "EXTRACT_LIMITS", grid.Limits(member=((".wav", 100),), other=100))
    sid = "bbaf2n"
    align = tmp_path / f"{sid}.align"
    align.write_text("0 23000 sil\n23000 29500 bin\n29500 34000 blue\n34000 35500 at\n"
                     "35500 41000 f\n41000 47250 two\n47250 53000 now\n53000 74500 sil\n")
    wav, video = tmp_path / f"{sid}.wav", tmp_path / f"{sid}.mpg"
    wav.write_bytes(b"RIFF" + bytes(200))
    video.write_bytes(bytes(10))
    monkeypatch.setattr(grid.features, "read_wav", lambda p: pytest.fail("decoded"))
    r = grid.process_utterance(video, wav, align, sid)
    assert not r["ok"] and r["kind"] == "wav_too_large", r
    assert "204 bytes, over the 100" in r["why"]


def test_an_archive_of_too_many_files_is_refused(tmp_path):
    z = _zeros_zip(tmp_path / "a.zip", {f"s1/{i}.wav": 1 for i in range(6)})
    with pytest.raises(ArchiveError, match=r"a\.zip: 6 members, over the limit of 5 files"):
        extract_archive(z, tmp_path / "out", limits=archives.Limits(members=5))
    with tarfile.open(tmp_path / "a.tar", "w") as tf:
        for i in range(6):
            tf.addfile(tarfile.TarInfo(f"s1/{i}.align"), io.BytesIO(b""))
    with pytest.raises(ArchiveError, match=r"member s1/5\.align is one file more than .* 5 files"):
        extract_archive(tmp_path / "a.tar", tmp_path / "out2", limits=archives.Limits(members=5))


def test_a_huge_long_name_header_is_refused_before_it_is_read(tmp_path, monkeypatch):
    long = "align/" + "n" * 150 + ".align"
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo(long)
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    assert extract_archive(tmp_path / "a.tar.gz", tmp_path / "ok")[0] == 1
    monkeypatch.setattr(archives, "TAR_HEADER_MAX", 100, raising=False)
    with pytest.raises(ArchiveError, match=r"a\.tar\.gz .*extended header .* of 163 bytes "
                                           r"at byte 0, over 100 bytes"):
        extract_archive(tmp_path / "a.tar.gz", tmp_path / "out")


def test_a_disk_that_fills_during_extraction_names_member_path_and_cause(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    z = _zeros_zip(tmp_path / "s3.zip", {"s3/a.mpg": 10, "s3/b.mpg": 10})
    out = tmp_path / "out"
    (out / "s3").mkdir(parents=True)
    tmp = out / "s3" / f".b.mpg.part-{os.getpid()}"
    tmp.symlink_to("/dev/full")  # what this process writes there lands on a full device
    with pytest.raises(ArchiveError) as e:
        extract_archive(z, out)
    msg = str(e.value)
    assert "s3.zip: cannot write member s3/b.mpg" in msg and "No space left on device" in msg
    assert not tmp.is_symlink() and _files(out) == ["s3/a.mpg"]


def test_stale_files_that_cannot_be_removed_are_left_and_do_not_fail(tmp_path, monkeypatch):
    from plstm_repro.stale import remove_stale

    stale = tmp_path / f".a.mpg.part-{dead_pid()}"
    stale.write_bytes(b"x")

    def read_only(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", read_only)  # a read-only folder, even for root
    assert remove_stale(tmp_path) == [] and stale.exists()


def test_skipped_members_of_a_compressed_tar_count_against_its_ratio(tmp_path):
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tf:
        ti = tarfile.TarInfo("s1/not_wanted.txt")  # skipped by the filter, never written
        ti.size = 4 << 20
        tf.addfile(ti, io.BytesIO(bytes(ti.size)))
    assert (tmp_path / "a.tar.gz").stat().st_size < 10 * KB
    with pytest.raises(ArchiveError,
                       match=r"member s1/not_wanted\.txt brings .* past the limit of 100x"):
        extract_archive(tmp_path / "a.tar.gz", tmp_path / "out",
                        want=lambda n: n.endswith(".align"),
                        limits=archives.Limits(ratio=100, ratio_floor=0))


def test_a_file_that_cannot_be_written_is_one_line_naming_it_and_leaves_no_temp(tmp_path,
                                                                                 monkeypatch):
    """A full disk while a figure or table is written (layout.atomic_write, the one atomic
    write): one EnvironmentProblem line naming the file, and no temp file left beside it."""
    import errno

    from plstm_repro.errors import EnvironmentProblem
    from plstm_repro.layout import atomic_write, atomic_write_text

    def full(tmp):
        Path(tmp).write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(EnvironmentProblem) as e:
        atomic_write(tmp_path / "fig.png", full)
    assert str(e.value) == f"cannot write {tmp_path / 'fig.png'}: No space left on device"
    assert list(tmp_path.iterdir()) == []
    atomic_write_text(tmp_path / "ok.md", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.md"]
