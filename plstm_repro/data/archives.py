"""Extracting untrusted archives (zip, tar) member by member, never outside the target folder.

Archives from the web or from a user's folder are data, not instructions: a member named
``/etc/x``, ``../../x`` or ``C:x``, a symbolic or hard link, a device file or a FIFO, a sparse or
encrypted member, or a name the caches cannot hold (control characters, not UTF-8, a part longer
than 255 bytes) is refused and reported, never written. Tars go through ``tarfile``'s ``data``
filter (PEP 706) and are then written by us as plain files; zips are checked the same way member
by member (``zipfile`` has no filter).

Sizes are bounded (archive bombs): every member by a ceiling per kind of file that the corpus
gives (:class:`Limits`; GRID and N-MNIST declare theirs), the whole archive by a total, by a
ratio to the archive's own size and by the free disk space, declared sizes checked before
writing and actual bytes while writing. Past a limit extraction stops with one line naming the
member and the limit, and the member's partial file is removed. Every file is written under a
temporary name (``.<name>.part-<pid>``) and renamed, so an interrupted extraction never leaves a
partial file under a final name; the next extraction removes those of dead processes.

A plain tar cut short at a member boundary, or with a garbage header, makes ``tarfile`` stop
early without an error: the end-of-archive blocks are checked, so such a tar is an ArchiveError.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..stale import remove_stale

CHUNK = 1 << 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MB = 1 << 20
GB = 1 << 30
NAME_PART_MAX = 255  # bytes: what Linux and macOS file systems hold per path component
TAR_HEADER_MAX = 1 * MB  # a long name or pax header is read into memory whole: bound it


@dataclass(frozen=True)
class Limits:
    """How much one archive may write: per member (by suffix), in total, per archive byte."""

    member: tuple[tuple[str, int], ...] = ()  # (suffix, ceiling in bytes), e.g. (".mpg", 4 MB)
    other: int = 256 * MB  # ceiling of a member whose suffix is not listed
    total: int = 16 * GB  # bytes written from one archive
    ratio: float = 100.0  # bytes written per byte of archive ...
    ratio_floor: int = 64 * MB  # ... once past this many (small archives of small files)
    reserve: int = 256 * MB  # free disk left untouched
    members: int = 250_000  # files from one archive (inodes; N-MNIST's train.zip: 60,000)

    def ceiling(self, name: str) -> int:
        low = name.lower()
        return next((c for s, c in self.member if low.endswith(s)), self.other)

    def readable(self, archive: Path) -> int:
        """Bytes a tar's members may declare in all, written or not (a compressed tar's
        skipped members are still decompressed to be skipped)."""
        return max(int(self.ratio * Path(archive).stat().st_size), self.ratio_floor)

    def budget(self, archive: Path, dest: Path) -> tuple[int, str]:
        """(bytes this archive may write into ``dest``, which limit that is, in words)."""
        size = Path(archive).stat().st_size
        free = shutil.disk_usage(dest).free - self.reserve
        by_ratio = max(int(self.ratio * size), self.ratio_floor)
        free = max(free, 0)
        ratio = f"the limit of {self.ratio:g}x the archive's {_size(size)} ({_size(by_ratio)})"
        disk = f"the free disk space under {dest} ({_size(free)}, {_size(self.reserve)} kept free)"
        return min((self.total, f"the total limit of {_size(self.total)}"), (by_ratio, ratio),
                   (free, disk))


DEFAULT_LIMITS = Limits()


class ArchiveError(ValueError):
    """An archive is not readable (corrupt, truncated, not an archive) or breaks a size limit;
    the message names it."""


def _size(n: int) -> str:
    for unit, b in (("GB", GB), ("MB", MB), ("KB", 1024)):
        if n >= b:
            return f"{n / b:.1f} {unit}"
    return f"{n} bytes"


def shown(name: str) -> str:
    """A member name safe to print: control characters and undecodable bytes escaped (a name
    holding terminal escape codes would otherwise act on the terminal)."""
    out = []
    for c in name:
        if c.isprintable() and not 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(c)
        else:
            out.append(c.encode("unicode_escape", "backslashreplace").decode("ascii")
                       if not 0xDC80 <= ord(c) <= 0xDCFF else f"\\x{ord(c) - 0xDC00:02x}")
    return "".join(out)


def name_problem(name: str) -> str | None:
    """Why a member name cannot be kept (the stores hold one name a line, in UTF-8), or None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a control character (newline, escape, ...) in its name"
    try:
        parts = [p.encode("utf-8") for p in name.replace("\\", "/").split("/")]
    except UnicodeEncodeError:
        return "a name that is not valid UTF-8"
    if any(len(p) > NAME_PART_MAX for p in parts):
        return f"a name part longer than {NAME_PART_MAX} bytes"
    return None


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


@dataclass
class _Budget:
    """What one extraction may still write, and the limits to name when it is spent."""

    archive: Path
    limits: Limits
    left: int
    why: str
    written: int = field(default=0)
    files: int = field(default=0)

    def member(self, name: str, declared: int) -> int:
        """The most bytes member ``name`` may write; ArchiveError when its declared size is
        already over its ceiling or over what the archive has left, or when it is one file
        too many."""
        self.files += 1
        if self.files > self.limits.members:
            self._stop(name, f"is one file more than the limit of {self.limits.members} files")
        cap = self.limits.ceiling(name)
        if declared > cap:
            self._stop(name, f"declares {_size(declared)}, over the ceiling of {_size(cap)} "
                             f"for {Path(name).suffix or 'its kind of'} files")
        if declared > self.left:
            self._stop(name, f"declares {_size(declared)}, past {self.why}")
        return cap

    def _stop(self, name: str, what: str):
        raise ArchiveError(f"{self.archive}: member {shown(name)} {what}; extraction stopped "
                           f"(an archive bomb or a corrupt archive)")


def _write(src, target: Path, name: str, budget: _Budget, cap: int) -> None:
    """Copy one member under a temporary name, counting the bytes against ``cap`` and the
    archive's budget; rename it into place only once whole."""
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    got = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            while block := src.read(CHUNK):
                got += len(block)
                if got > cap:
                    budget._stop(name, f"is over the ceiling of {_size(cap)} for "
                                       f"{Path(name).suffix or 'its kind of'} files")
                if got > budget.left:
                    budget._stop(name, f"goes past {budget.why} after {_size(budget.written)}")
                out.write(block)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if _clash(e):
            raise
        raise ArchiveError(f"{budget.archive}: cannot write member {shown(name)} to {target}: "
                           f"{e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    budget.left -= got
    budget.written += got


def extract_archive(archive: Path, dest: Path, want: Callable[[str], bool] | None = None,
                    skip_damaged: bool = False, progress: bool = False,
                    limits: Limits = DEFAULT_LIMITS) -> tuple[int, list[str]]:
    """Extract the regular files of a zip or tar into ``dest``, treating the archive as untrusted.

    Args:
        archive: a ``.zip`` or a tar (``.tar``, ``.tar.gz``, ``.tgz``, ...).
        dest: target folder (created).
        want: optional filter on member names; members it rejects are skipped silently.
        skip_damaged: a zip member that cannot be read (bad CRC, bad compression) is skipped and
            reported instead of ending the extraction (N-MNIST: one unreadable recording of
            70,000 is skipped and named; a truncated GRID download must fail).
        progress: a progress bar over a zip's members.
        limits: size ceilings (per member by suffix, total, ratio); the corpus's own.

    Returns:
        (files written, ["member: why" for each member refused or skipped], names escaped).

    Raises:
        ArchiveError: the archive cannot be opened, is corrupt or truncated, or a member breaks a
            size limit (files written before stay in ``dest``; no partial file is left).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale(dest, recursive=True)
    low = archive.name.lower()
    if not (low.endswith(".zip") or low.endswith(TAR_SUFFIXES)):
        raise ArchiveError(f"{archive}: not a zip or tar archive (by its name)")
    left, why = limits.budget(archive, dest)
    budget = _Budget(archive, limits, left, why)
    if low.endswith(".zip"):
        return _extract_zip(archive, dest, want, skip_damaged, progress, budget)
    return _extract_tar(archive, dest, want, budget)


def _clash(e: OSError) -> bool:
    """A member whose path runs into a file or folder of the same name (``a`` and ``a/b``)."""
    return isinstance(e, (NotADirectoryError, IsADirectoryError, FileExistsError))


def _extract_zip(archive: Path, dest: Path, want, skip_damaged: bool, progress: bool,
                 budget: _Budget) -> tuple[int, list[str]]:
    from tqdm import tqdm

    refused, n = [], 0
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{archive} is not a readable zip archive ({e})") from None
    with zf:
        todo = []
        for info in zf.infolist():
            if info.is_dir() or (want is not None and not want(info.filename)):
                continue
            why = _zip_refusal(info, dest)
            if why:
                refused.append(f"{shown(info.filename)}: {why}, refused")
                continue
            todo.append(info)
        declared = sum(i.file_size for i in todo)
        if len(todo) > budget.limits.members:
            raise ArchiveError(f"{archive}: {len(todo)} members, over the limit of "
                               f"{budget.limits.members} files; nothing extracted")
        if declared > budget.left:
            raise ArchiveError(f"{archive}: its members declare {_size(declared)}, past "
                               f"{budget.why}; nothing extracted")
        for info in tqdm(todo, desc=f"extract {archive.name}", unit="file",
                         disable=not progress, leave=False):
            cap = budget.member(info.filename, info.file_size)
            try:
                with zf.open(info) as src:
                    _write(src, safe_target(dest, info.filename), info.filename, budget, cap)
            except OSError as e:
                if not _clash(e):
                    raise
                refused.append(f"{shown(info.filename)}: clashes with a file or folder of the "
                               f"same name, refused")
                continue
            except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError,
                    RuntimeError) as e:
                if skip_damaged:
                    refused.append(f"{shown(info.filename)}: unreadable "
                                   f"({type(e).__name__}: {e})")
                    continue
                raise ArchiveError(f"{archive}: member {shown(info.filename)} is corrupt or "
                                   f"truncated ({type(e).__name__}: {e})") from None
            n += 1
    return n, refused


def _zip_refusal(info: zipfile.ZipInfo, dest: Path) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no Unix type recorded
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted (no password is known)"
    why = name_problem(info.filename)
    if why:
        return why
    if safe_target(dest, info.filename) is None:
        return f"would be written outside {dest}"
    return None


class _BoundedTarInfo(tarfile.TarInfo):
    """``tarfile`` reads a GNU long name or a pax header into memory whole, whatever size it
    declares (a .tar.gz can declare gigabytes in a few KB): refuse the large ones first."""

    _EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                 tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)

    def _proc_member(self, tf):
        if self.type in self._EXTENDED and self.size > TAR_HEADER_MAX:
            raise tarfile.HeaderError(f"an extended header (long name or pax) of {self.size} "
                                      f"bytes at byte {self.offset}, over {_size(TAR_HEADER_MAX)}")
        return super()._proc_member(tf)


def _extract_tar(archive: Path, dest: Path, want, budget: _Budget) -> tuple[int, list[str]]:
    if not hasattr(tarfile, "data_filter"):  # PEP 706: Python >= 3.11.4
        raise RuntimeError("extracting tars safely needs tarfile's data filter "
                           "(Python >= 3.11.4)")
    try:
        with tarfile.open(archive, "r:*", tarinfo=_BoundedTarInfo) as tf:
            out = _tar_members(tf, archive, dest, want, budget)
            _check_tar_end(tf, archive)
            return out
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise ArchiveError(f"{archive} is corrupt, truncated or not a tar ({type(e).__name__}: "
                           f"{e})") from None


def _tar_refusal(m: tarfile.TarInfo, dest: Path) -> str | None:
    if not m.isfile():
        return ("a symbolic link" if m.issym() else "a hard link" if m.islnk()
                else "a device or FIFO")
    if m.issparse():  # holes read back as zeros: a few KB can declare terabytes
        return "a sparse file"
    why = name_problem(m.name)
    if why:
        return why
    if safe_target(dest, m.name) is None:  # refuse, do not strip, absolute names
        return f"would be written outside {dest}"
    try:
        tarfile.data_filter(m, str(dest))
    except tarfile.FilterError as e:
        return f"{type(e).__name__} ({shown(str(e))})"
    return None


def _tar_members(tf: tarfile.TarFile, archive: Path, dest: Path, want,
                 budget: _Budget) -> tuple[int, list[str]]:
    refused, n, declared, readable = [], 0, 0, budget.limits.readable(archive)
    for m in tf:
        declared += m.size
        if declared > readable:  # skipped members are decompressed too: bound them as well
            budget._stop(m.name, f"brings the members' declared sizes to {_size(declared)}, "
                                 f"past the limit of {budget.limits.ratio:g}x the archive's "
                                 f"size ({_size(readable)})")
        if m.isdir() or (want is not None and not want(m.name)):
            continue
        why = _tar_refusal(m, dest)
        if why:
            refused.append(f"{shown(m.name)}: {why}, refused")
            continue
        cap = budget.member(m.name, m.size)
        target = safe_target(dest, m.name)
        try:
            _write(tf.extractfile(m), target, m.name, budget, cap)
        except OSError as e:
            if not _clash(e):
                raise
            refused.append(f"{shown(m.name)}: clashes with a file or folder of the same name, "
                           f"refused")
            continue
        if target.stat().st_size != m.size:
            target.unlink()
            raise EOFError(f"{shown(m.name)}: {m.size} bytes announced, fewer read")
        n += 1
    return n, refused


def _check_tar_end(tf: tarfile.TarFile, archive: Path) -> None:
    """``tarfile`` stops without an error at a garbage header or at the end of the data: what
    follows the last member must be the end-of-archive marker (zero blocks, at least two)."""
    f = tf.fileobj
    f.seek(tf.offset)
    zeros = 0
    while zeros < 64 * MB and (block := f.read(CHUNK)):  # padding past 64 MB: enough seen
        if block.count(0) != len(block):
            raise ArchiveError(f"{archive} is corrupt: an unreadable header at byte "
                               f"{tf.offset + zeros + next(i for i, b in enumerate(block) if b)}"
                               f" after {len(tf.getmembers())} members (the rest is ignored by "
                               f"tar readers)")
        zeros += len(block)
    if zeros < 2 * tarfile.BLOCKSIZE:
        raise ArchiveError(f"{archive} is truncated: it ends after {len(tf.getmembers())} "
                           f"members without the end-of-archive blocks")
