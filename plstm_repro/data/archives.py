"""Extracting untrusted archives (zip, tar) member by member, never outside the target folder.

Archives from the web or from a user's folder are data, not instructions: a member named
``/etc/x``, ``../../x`` or ``C:x``, a symbolic or hard link, a device file or a FIFO is refused and
reported, never written. Tars go through ``tarfile``'s ``data`` filter (PEP 706) and are then
written by us as plain files; zips are checked the same way member by member (``zipfile`` has
no filter). Every file is written under a temporary name and renamed, so an interrupted
extraction never leaves a partial file under a final name.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class ArchiveError(ValueError):
    """An archive is not readable (corrupt, truncated, not an archive); the message names it."""


def is_archive(path: Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".zip") or name.endswith(TAR_SUFFIXES)


def safe_target(dest: Path, name: str) -> Path | None:
    """Where member ``name`` may be written under ``dest``; None when it would land outside
    (absolute path, drive letter, ``..``, a symlink already in ``dest``) or names no file."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        return None
    target = Path(dest).joinpath(*parts)
    root = Path(dest).resolve()
    real = target.resolve()
    if real != root and root not in real.parents:
        return None
    return target


def _write(src, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def extract_archive(archive: Path, dest: Path, want: Callable[[str], bool] | None = None,
                    skip_damaged: bool = False,
                    progress: bool = False) -> tuple[int, list[str]]:
    """Extract the regular files of a zip or tar into ``dest``, treating the archive as untrusted.

    Args:
        archive: a ``.zip`` or a tar (``.tar``, ``.tar.gz``, ``.tgz``, ...).
        dest: target folder (created).
        want: optional filter on member names; members it rejects are skipped silently.
        skip_damaged: a zip member that cannot be read (bad CRC, bad compression) is skipped and
            reported instead of ending the extraction (N-MNIST: one unreadable recording of
            70,000 is skipped and named; a truncated GRID download must fail).
        progress: a progress bar over a zip's members.

    Returns:
        (files written, ["member: why" for each member refused or skipped]).

    Raises:
        ArchiveError: the archive cannot be opened or is corrupt or truncated (files written
            before the damage stay in ``dest``; no partial file is left).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".zip"):
        return _extract_zip(archive, dest, want, skip_damaged, progress)
    if archive.name.lower().endswith(TAR_SUFFIXES):
        return _extract_tar(archive, dest, want)
    raise ArchiveError(f"{archive}: not a zip or tar archive (by its name)")


def _extract_zip(archive: Path, dest: Path, want, skip_damaged: bool = False,
                 progress: bool = False) -> tuple[int, list[str]]:
    from tqdm import tqdm

    refused, n = [], 0
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{archive} is not a readable zip archive ({e})") from None
    with zf:
        for info in tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file",
                         disable=not progress, leave=False):
            if info.is_dir() or (want is not None and not want(info.filename)):
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                refused.append(f"{info.filename}: a symbolic link, refused")
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no Unix type recorded
                refused.append(f"{info.filename}: not a regular file, refused")
                continue
            target = safe_target(dest, info.filename)
            if target is None:
                refused.append(f"{info.filename}: would be written outside {dest}, refused")
                continue
            try:
                with zf.open(info) as src:
                    _write(src, target)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
                if skip_damaged:
                    refused.append(f"{info.filename}: unreadable ({type(e).__name__}: {e})")
                    continue
                raise ArchiveError(f"{archive}: member {info.filename} is corrupt or truncated "
                                   f"({type(e).__name__}: {e})") from None
            n += 1
    return n, refused


def _extract_tar(archive: Path, dest: Path, want) -> tuple[int, list[str]]:
    if not hasattr(tarfile, "data_filter"):  # PEP 706: Python >= 3.11.4
        raise RuntimeError("extracting tars safely needs tarfile's data filter "
                           "(Python >= 3.11.4)")
    try:
        with tarfile.open(archive, "r:*") as tf:
            return _tar_members(tf, archive, dest, want)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"{archive} is corrupt, truncated or not a tar ({type(e).__name__}: "
                           f"{e})") from None


def _tar_members(tf: tarfile.TarFile, archive: Path, dest: Path,
                 want) -> tuple[int, list[str]]:
    refused, n = [], 0
    for m in tf:
        if m.isdir() or (want is not None and not want(m.name)):
            continue
        if not m.isfile():
            kind = ("a symbolic link" if m.issym() else "a hard link" if m.islnk()
                    else "a device or FIFO")
            refused.append(f"{m.name}: {kind}, refused")
            continue
        target = safe_target(dest, m.name)  # refuse, do not strip, absolute names
        if target is None:
            refused.append(f"{m.name}: would be written outside {dest}, refused")
            continue
        try:
            tarfile.data_filter(m, str(dest))
        except tarfile.FilterError as e:
            refused.append(f"{m.name}: {type(e).__name__} ({e}), refused")
            continue
        _write(tf.extractfile(m), target)
        if target.stat().st_size != m.size:
            target.unlink()
            raise EOFError(f"{m.name}: {m.size} bytes announced, fewer read")
        n += 1
    return n, refused
