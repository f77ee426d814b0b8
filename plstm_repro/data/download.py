"""Fetching dataset files: resumable, checksummed downloads from mirrors, or copies from a folder.

Shared by the datasets that need files from the web (MNIST for the seed repository's task; N-MNIST
for sec. 3.3 and GRID for sec. 3.4 of Neil et al. 2016). Uses only ``urllib``.

A download is written to ``<dest>.part`` and renamed to ``dest`` only once complete and (when an
md5 is given) verified, so a file under its final name is always whole. An interrupted download
leaves its ``.part`` file, and the next call continues it with an HTTP Range request (starting over
when the server ignores the Range header).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import EnvironmentProblem

CHUNK = 1 << 16
USER_AGENT = "plstm-repro/0.1 (+urllib)"


class DownloadError(EnvironmentProblem):
    """A file could not be downloaded or placed; the message says how to place it by hand."""


class ChecksumError(DownloadError):
    """A file's md5 does not match the expected one."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex md5 digest of the file at ``path``."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def part_path(dest: Path) -> Path:
    """Where the download of ``dest`` is written until complete: ``dest`` + ``.part``."""
    dest = Path(dest)
    return dest.with_suffix(dest.suffix + ".part")


def check_md5(path: Path, md5: str | None) -> bool:
    """True when ``path`` exists and ``md5`` is None or matches its md5."""
    path = Path(path)
    return path.is_file() and (md5 is None or md5sum(path) == md5.lower())


class _Incomplete(Exception):
    """The connection ended before the announced length: keep the .part to resume."""


def _fetch(url: str, part: Path, timeout: float, progress: bool, desc: str) -> str:
    """Download ``url`` into ``part``, continuing from its current size when possible; returns
    the URL the bytes came from (after redirects: an https URL may redirect to http)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Range past the end: the .part is probably complete; let the checksum decide.
            return url
        raise
    with resp:
        final = resp.geturl() or url
        status = getattr(resp, "status", 200)
        content_range = resp.headers.get("Content-Range", "")
        if offset and status == 206 and content_range.startswith(f"bytes {offset}-"):
            mode = "ab"
        else:  # server ignored Range (200) or answered another range: start over
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        total = offset + remaining if remaining is not None else None
        got = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=desc, disable=not progress,
                                         leave=False) as bar:
            try:
                while block := resp.read(CHUNK):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
            except http.client.IncompleteRead as e:  # keep what arrived
                f.write(e.partial)
                got += len(e.partial)
        if remaining is not None and got < remaining:
            raise _Incomplete(f"connection closed after {offset + got} of {total} bytes "
                              f"(kept {part.name} to resume)")
    return final


def _manual_hint(dest: Path, md5: str | None, dataset: str | None) -> str:
    name = dest.name
    cmd = f"plstm download {dataset or '<dataset>'} --from DIR"
    lines = [
        "To place it by hand, download it on a machine with internet access and either",
        f"  - put it at {dest}",
        f"  - or put it in a folder DIR and run `{cmd}` (DIR must hold {name})",
    ]
    if md5:
        lines.append(f"Expected md5: {md5}")
    return "\n".join(lines)


def _warn(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def download_file(urls: list[str], dest: Path, md5: str | None = None, progress: bool = True,
                  *, timeout: float = 30.0, dataset: str | None = None, echo=_warn) -> Path:
    """Download one file from the first mirror that works, resumably, and verify its md5.

    Args:
        urls: full URLs of the same file, tried in order.
        dest: final path; its folder is created. Skipped when it exists with a matching md5.
        md5: expected hex md5 (None: no check).
        progress: show a tqdm bar (bytes, rate, ETA).
        timeout: socket timeout in seconds per request.
        dataset: dataset name for the hint in the error message (``plstm download <dataset>``).
        echo: where the notice goes when the file came over plain http (list https mirrors
            first: this says when none of them worked).

    Returns:
        ``dest``.

    Raises:
        DownloadError: every mirror failed (unreachable, HTTP error, interrupted, or wrong md5);
            the message names the file, each URL tried with its error, and how to place the file
            by hand. No file is left under ``dest``; a partial download stays in ``dest.part``
            for a later resume, unless it failed its checksum.
    """
    dest = Path(dest)
    if dest.is_file() and check_md5(dest, md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if not urls:
        raise DownloadError(f"No URL known for {dest.name}.\n{_manual_hint(dest, md5, dataset)}")
    failures = []
    for url in urls:
        for attempt in range(2):  # second attempt only after a resumed file failed its md5
            resumed = part.exists() and part.stat().st_size > 0
            try:
                came_from = _fetch(url, part, timeout, progress, dest.name)
            except (OSError, http.client.HTTPException, ValueError, _Incomplete) as e:
                failures.append(f"{url}: {_describe(e)}")
                break
            if check_md5(part, md5):
                os.replace(part, dest)
                if came_from.lower().startswith("http://"):
                    echo(_plain_http(dest, came_from, md5, failures))
                return dest
            got = md5sum(part)
            part.unlink()
            if resumed and attempt == 0:
                continue  # the old .part may have been stale: once more from scratch
            failures.append(f"{url}: md5 mismatch (got {got}, expected {md5})")
            break
    tried = "\n".join(f"  {f}" for f in failures)
    raise DownloadError(f"Could not download {dest.name}. Tried:\n{tried}\n"
                        f"{_manual_hint(dest, md5, dataset)}")


def _plain_http(dest: Path, url: str, md5: str | None, failures: list[str]) -> str:
    https = [f for f in failures if f.lower().startswith("https://")]
    return (f"note: {dest.name} came over plain http ({url})"
            + (f" after https failed ({https[0]})" if https else "")
            + ("; its md5 matched" if md5 else "; it has no published checksum, so only the "
               "archive checks (members, sizes) stand between it and your disk"))


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"unreachable ({e.reason})"
    return f"{type(e).__name__}: {e}"


def place_from(src_dir: Path, names: list[str], dest_dir: Path,
               md5s: dict[str, str] | None = None) -> list[Path]:
    """Copy ``names`` from a local folder into ``dest_dir``, checking md5s where given.

    Each file is copied to ``<dest>.part``, verified, then renamed, so a bad copy never ends up
    under the final name. Every source is checked before anything is copied.

    Raises:
        FileNotFoundError: a file is missing from ``src_dir`` (the message names it).
        ChecksumError: a file's md5 differs from ``md5s[name]`` (the message names it).
    """
    src_dir, dest_dir = Path(src_dir), Path(dest_dir)
    md5s = md5s or {}
    missing = [n for n in names if not (src_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found in {src_dir} "
                                f"(needed: {', '.join(names)})")
    for name in names:
        want = md5s.get(name)
        if want is not None and (got := md5sum(src_dir / name)) != want.lower():
            raise ChecksumError(f"{src_dir / name} has md5 {got}, expected {want}: "
                                f"a corrupt or different file")
    dest_dir.mkdir(parents=True, exist_ok=True)
    placed = []
    for name in names:
        src, dest = src_dir / name, dest_dir / name
        if dest.exists() and os.path.samefile(src, dest):
            placed.append(dest)
            continue
        part = part_path(dest)
        shutil.copyfile(src, part)
        want = md5s.get(name)
        if want is not None and md5sum(part) != want.lower():
            part.unlink()
            raise ChecksumError(f"copy of {src} to {dest} failed its md5 check")
        os.replace(part, dest)
        placed.append(dest)
    return placed
