"""Untrusted input, round two (issue 19): archive bombs, truncated tars, bad member names,
caches that must see their inputs change, bounded decoding. Every archive is crafted here, small;
a "bomb" is a small archive against small ceilings passed in."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

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
    buf[386:398] = b"%011o\0" % (realsize - 512)  # one region: the last 512 bytes
    buf[398:410] = b"%011o\0" % 512
    buf[483:495] = b"%011o\0" % realsize
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
    with pytest.raises(ArchiveError, match=r"s1\.tar is corrupt: an unreadable header at byte 1024"):
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
    assert n == 1 and refused == ["Train/5/bad\\nname.bin: a control character (newline, "
                                  "escape, ...) in its name, refused"]


def test_partial_files_of_a_dead_process_are_removed_a_live_ones_kept(tmp_path):
    out = tmp_path / "out" / "s3"
    out.mkdir(parents=True)
    dead, live = out / f".a.mpg.part-{dead_pid()}", out / f".b.mpg.part-{os.getppid()}"
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    _zeros_zip(tmp_path / "s3.zip", {"s3/c.mpg": 10})
    extract_archive(tmp_path / "s3.zip", tmp_path / "out")
    assert not dead.exists() and live.exists()
