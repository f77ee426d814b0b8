"""N-MNIST (Orchard et al. 2015; Neil et al. 2016, sec. 3.3, Table 1): download, decode, cache.

Layout, as tonic's ``tonic.datasets.NMNIST(save_to="data")`` expects it, so both find the same
files: ``data/NMNIST/train.zip``, ``test.zip`` (kept: tonic checks they exist) and the extracted
``Train/<digit>/<id>.bin``, ``Test/<digit>/<id>.bin``. The URLs and md5 sums are read from tonic's
class, never copied here.

A recording is a sequence of 5-byte events (Orchard's format, decoded by :mod:`.nmnist_format`,
equal to tonic's ``tonic.io.read_mnist_file`` on valid files but linear in time): x (8 bits),
y (8 bits), polarity (1 bit), timestamp in us (23 bits); a record with y = 240 is a
timestamp-overflow marker that adds 2^13 us to every later timestamp. A file over
``RECORDING_MAX_BYTES`` is refused before it is read. ``plstm preprocess nmnist`` decodes every
recording once into a memory-mapped store per split (:mod:`plstm_repro.data.store`): table
``events`` with x, y, p (uint8) and t (uint32, us), the label per record and the source path as
its name; the store keeps a fingerprint of its inputs and is made again when they change.
Corrupt recordings (a size that is not a multiple of 5, an empty file, events outside the 34x34
sensor, an unreadable file or zip member, a name a store cannot hold) and missing digit folders
are skipped, counted and named in one summary.

``synthetic-nmnist`` (:mod:`plstm_repro.data.synthetic_nmnist`) writes real ``.bin`` files in the
same layout under ``data/SyntheticNMNIST`` and goes through the same code.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..stale import pid_alive, remove_stale
from . import nmnist_format as fmt
from .archives import ArchiveError, Limits, extract_archive, name_problem, shown
from .download import (
    ChecksumError,
    DownloadError,
    check_md5,
    download_file,
    md5sum,
    place_from,
)
from .nmnist_format import (
    RECORDING_MAX_BYTES,
    SENSOR,
    CorruptRecording,
    decode_recording,
    encode_events,
    read_events,
    too_large,
)
from .store import Store, StoreWriter

EVENT_TABLE = {"events": {"x": "u1", "y": "u1", "p": "u1", "t": "<u4"}}
DECODER = "plstm read_events/1"  # part of the cache fingerprint: bump when decoding changes
EXTRACT_LIMITS = Limits(member=((".bin", RECORDING_MAX_BYTES),), other=RECORDING_MAX_BYTES)


@dataclass(frozen=True)
class NMNISTSource:
    """Where a dataset of N-MNIST recordings lives and where it comes from."""

    name: str  # what users type
    folder: str  # under the data root
    synthetic: bool = False

    def root(self, data_root: Path) -> Path:
        return Path(data_root) / self.folder

    def store_path(self, data_root: Path, split: str) -> Path:
        return self.root(data_root) / "cache" / split


NMNIST = NMNISTSource("nmnist", "NMNIST")
SYNTHETIC = NMNISTSource("synthetic-nmnist", "SyntheticNMNIST", synthetic=True)
SPLITS = {"train": "Train", "test": "Test"}


def tonic_resources() -> dict[str, dict[str, str]]:
    """{split: {url, filename, md5, folder}} as ``tonic.datasets.NMNIST`` declares them."""
    from tonic.datasets import NMNIST as TonicNMNIST

    return {split: {"url": getattr(TonicNMNIST, f"{split}_url"),
                    "filename": getattr(TonicNMNIST, f"{split}_filename"),
                    "md5": getattr(TonicNMNIST, f"{split}_md5"),
                    "folder": getattr(TonicNMNIST, f"{split}_folder")}
            for split in SPLITS}


def _tree_complete(folder: Path) -> bool:
    return (folder / ".extracted").is_file()


def _extract(zip_path: Path, root: Path, split: str, progress: bool, echo) -> None:
    """Extract a split's zip into ``root`` (tonic's layout) once; bad members are recorded in
    ``<Split>/.skipped.json`` for the preprocessing summary. ``<Split>/.extracting`` marks an
    extraction under way until ``.extracted`` replaces it, so preprocessing can refuse a tree
    whose extraction did not finish."""
    folder = root / SPLITS[split]
    if _tree_complete(folder):
        return
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise DownloadError(f"{folder} is a symbolic link or a file: {zip_path.name} is only "
                            f"extracted into a plain folder (remove {folder}; to keep the data "
                            f"elsewhere, link {root} itself or use another data root)")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".extracting"
    marker.write_text(f"{os.getpid()}\n")
    try:
        n, skipped = extract_archive(zip_path, root, skip_damaged=True, progress=progress,
                                     limits=EXTRACT_LIMITS)
    except ArchiveError as e:
        raise DownloadError(f"{e}. Download it again, or place the files by hand "
                            f"(`plstm download nmnist --from DIR`).") from None
    if n == 0:
        raise DownloadError(f"{zip_path}: no recording could be extracted into {folder} "
                            f"({len(skipped)} members refused or unreadable"
                            + (f", first: {skipped[0]}" if skipped else "") + ")")
    (folder / ".skipped.json").write_text(json.dumps(skipped, indent=1))
    (folder / ".extracted").write_text(f"{n} files from {zip_path.name}\n")
    marker.unlink(missing_ok=True)
    echo(f"extracted {n} files from {zip_path}" + (f"; skipped {len(skipped)} unreadable or "
                                                     f"unsafe members" if skipped else ""))


def _copy_tree(src: Path, dest: Path, progress: bool) -> int:
    """Copy a ``<digit>/<id>.bin`` tree file by file (temp name, then rename)."""
    import shutil

    from tqdm import tqdm

    files = sorted(p for p in src.rglob("*.bin") if p.is_file())
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / ".extracting"
    marker.write_text(f"{os.getpid()}\n")
    (dest / ".extracted").unlink(missing_ok=True)
    for f in tqdm(files, desc=f"copy {src.name}", unit="file", disable=not progress, leave=False):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
        shutil.copyfile(f, tmp)
        os.replace(tmp, target)
    (dest / ".extracted").write_text(f"{len(files)} files copied from {src}\n")
    marker.unlink(missing_ok=True)
    return len(files)


def download_nmnist(root: Path | str = "data", from_dir: Path | None = None,
                    progress: bool = True, echo=print, source: NMNISTSource = NMNIST) -> Path:
    """Fetch N-MNIST into ``root/NMNIST`` in tonic's layout and return that folder.

    From the web: tonic's two zips through the resumable, md5-checked downloader, then extracted
    (the zips are kept). With ``from_dir``: a folder holding ``train.zip`` and ``test.zip``
    (md5-checked), or an extracted ``Train/`` and ``Test/`` tree. Zips are untrusted: no member
    lands outside the folder. Offline or on a checksum mismatch: one DownloadError naming the
    URLs, files, md5 sums and where to put them; nothing is left under a final name unverified.
    """
    root = source.root(root)
    root.mkdir(parents=True, exist_ok=True)
    if from_dir is not None:
        return _place_nmnist(Path(from_dir), root, progress, echo, source)
    res = tonic_resources()
    failures = []
    for split, r in res.items():
        dest = root / r["filename"]
        if _tree_complete(root / r["folder"]) and dest.is_file():
            continue
        try:
            download_file([r["url"]], dest, r["md5"], progress, dataset=source.name, echo=echo)
        except DownloadError as e:
            failures.append((r, str(e).splitlines()[1:3]))
    if failures:
        lines = [f"Could not download N-MNIST ({len(failures)} of 2 files):"]
        for r, why in failures:
            lines.append(f"  {r['filename']} (md5 {r['md5']}) from {r['url']}")
            lines += [f"    {w.strip()}" for w in why if w.strip()]
        lines += ["To place the files by hand, download them on a machine with internet access",
                  f"and either put train.zip and test.zip in {root}/ and run this command again,",
                  (f"or run `plstm download {source.name} --from DIR` with DIR holding the two "
                  "zips (or their extracted Train/ and Test/ folders)."),
                  "Expected md5: " + ", ".join(f"{r['filename']} {r['md5']}"
                                               for r in res.values())]
        raise DownloadError("\n".join(lines))
    for split, r in res.items():
        _extract(root / r["filename"], root, split, progress, echo)
    return root


def _place_nmnist(src: Path, root: Path, progress: bool, echo, source: NMNISTSource) -> Path:
    if not src.is_dir():
        raise FileNotFoundError(f"--from: {src} is not a folder")
    trees = {split: src / folder for split, folder in SPLITS.items()}
    if all(t.is_dir() for t in trees.values()):
        for split, tree in trees.items():
            dest = root / SPLITS[split]
            if tree.resolve() != dest.resolve():
                n = _copy_tree(tree, dest, progress)
                echo(f"copied {n} recordings from {tree} to {dest}")
        return root
    if source.synthetic:
        raise FileNotFoundError(f"--from: {src} holds no Train/ and Test/ folders")
    res = tonic_resources()
    names = [r["filename"] for r in res.values()]
    if not all((src / n).is_file() for n in names):
        raise FileNotFoundError(
            f"--from: {src} holds neither {' and '.join(names)} nor extracted Train/ and Test/ "
            f"folders (Train/<digit>/<id>.bin)")
    place_from(src, names, root, {r["filename"]: r["md5"] for r in res.values()})
    for split, r in res.items():
        _extract(root / r["filename"], root, split, progress, echo)
    return root


# --- preprocessing --------------------------------------------------------------------------

def _recordings(tree: Path):
    """(digit, path) of every .bin under ``tree``; missing digit folders listed apart."""
    found, missing = [], []
    for d in range(10):
        folder = tree / str(d)
        if not folder.is_dir():
            missing.append(str(folder))
            continue
        found += [(d, p) for p in sorted(folder.glob("*.bin"))]
    return found, missing


def _unfinished(tree: Path) -> str | None:
    """Why ``tree`` cannot be preprocessed yet (an extraction under way or killed), or None."""
    marker = tree / ".extracting"
    if not marker.is_file():
        return None
    text = marker.read_text().strip()
    pid = int(text) if text.isdigit() else 0
    if pid_alive(pid) and pid != os.getpid():
        return f"{tree} is being extracted right now (process {pid}); preprocess when it is done"
    return (f"the extraction into {tree} did not finish (a killed `plstm download`?): run the "
            "download again, and then preprocess")


def fingerprint(tree: Path) -> str:
    """A digest of the recordings under ``tree`` (path, size, mtime) and of the decoding
    settings: a cache made from other inputs or settings is not this tree's cache."""
    import hashlib

    h = hashlib.sha256(json.dumps({"decoder": DECODER, "max_bytes": fmt.RECORDING_MAX_BYTES,
                                   "sensor": SENSOR}).encode())
    recs, missing = _recordings(tree)
    for _, p in recs:
        st = p.stat()
        h.update(f"{p.relative_to(tree)}\0{st.st_size}\0{st.st_mtime_ns}\n"
                 .encode("utf-8", "surrogateescape"))
    h.update(json.dumps(missing).encode())
    skipped = tree / ".skipped.json"
    if skipped.is_file():
        h.update(skipped.read_bytes())
    return h.hexdigest()[:16]


def preprocess_split(source_root: Path, split: str, out: Path, progress: bool = True) -> dict:
    """Decode every recording of one split into a store at ``out``; returns the summary."""
    from tqdm import tqdm

    tree = source_root / SPLITS[split]
    if not tree.is_dir():
        raise FileNotFoundError(
            f"N-MNIST {split}: {tree} not found. Run `plstm download "
            f"{'synthetic-nmnist' if 'Synthetic' in str(source_root) else 'nmnist'}` first "
            "(or `--from DIR` with the zips or the extracted Train/ and Test/ folders).")
    if why := _unfinished(tree):
        raise DownloadError(f"N-MNIST {split}: {why}")
    remove_stale(out.parent)
    print_ = fingerprint(tree)
    recs, missing = _recordings(tree)
    skipped_file = tree / ".skipped.json"
    corrupt = [{"path": m.split(":")[0], "why": m.split(": ", 1)[-1]}
               for m in (json.loads(skipped_file.read_text()) if skipped_file.is_file() else [])]
    events, t0 = 0, time.time()
    with StoreWriter(out, EVENT_TABLE, {"label": "u1"}) as w:
        bar = tqdm(recs, desc=f"preprocess {split}", unit="rec", disable=not progress,
                   dynamic_ncols=True)
        for digit, path in bar:
            rel = str(path.relative_to(source_root))
            try:
                ev = _decode_file(path, rel)
            except (CorruptRecording, OSError, ValueError, IndexError) as e:
                corrupt.append({"path": shown(rel), "why": str(e)})
                continue
            w.add(rel, {"label": digit}, events=ev)
            events += len(ev["t"])
        seconds = time.time() - t0
        summary = {"split": split, "recordings": w.n, "events": events,
                   "mean_events": round(events / max(w.n, 1), 1),
                   "corrupt": len(corrupt), "corrupt_files": corrupt,
                   "missing_digit_folders": missing, "seconds": round(seconds, 2),
                   "recordings_per_s": round(len(recs) / max(seconds, 1e-9), 1),
                   "fingerprint": print_}
        w.commit(summary)
    return summary


def _decode_file(path: Path, rel: str) -> dict[str, np.ndarray]:
    """One recording file, its name and size checked before anything is read."""
    if why := name_problem(rel):
        raise CorruptRecording(f"{why}: a store cannot hold it")
    size = path.stat().st_size
    if size > fmt.RECORDING_MAX_BYTES:  # read at call time: one value to change
        raise CorruptRecording(too_large(size))
    return decode_recording(path.read_bytes(), rel)


def preprocess_nmnist(root: Path | str = "data", progress: bool = True, echo=print,
                      source: NMNISTSource = NMNIST) -> dict[str, dict]:
    """``plstm preprocess nmnist``: both splits into ``root/NMNIST/cache/{train,test}``, once.

    A split whose store was made from the same recordings with the same settings (its
    fingerprint) is left alone (its stored summary is returned); one made from other inputs is
    made again. A split whose extraction did not finish is refused."""
    src_root = source.root(root)
    out = {}
    for split, folder in SPLITS.items():
        path = source.store_path(root, split)
        tree = src_root / folder
        if Store.exists(path):
            cached = Store(path).info
            if not tree.is_dir() or (not _unfinished(tree)
                                     and cached.get("fingerprint") == fingerprint(tree)):
                out[split] = {**cached, "cached": True}
                continue
            if not _unfinished(tree):
                echo(f"{source.name} {split}: the recordings under {tree} changed since the "
                     f"cache was made: preprocessing again")
        out[split] = preprocess_split(src_root, split, path, progress)
        s = out[split]
        echo(f"{source.name} {split}: {s['recordings']} recordings, {s['events']} events, "
             f"{s['corrupt']} corrupt, {len(s['missing_digit_folders'])} digit folders missing, "
             f"{s['recordings_per_s']} recordings/s")
        for c in s["corrupt_files"]:
            echo(f"  skipped {shown(c['path'])}: {c['why']}")
        for m in s["missing_digit_folders"]:
            echo(f"  missing digit folder {shown(m)}")
    return out


def open_store(root: Path | str, split: str, source: NMNISTSource = NMNIST) -> Store:
    """The preprocessed store of ``split``, or FileNotFoundError saying which command makes it."""
    path = source.store_path(root, split)
    if not Store.exists(path):
        raise FileNotFoundError(
            f"{source.name} {split}: no preprocessed cache at {path}. Run `plstm download "
            f"{source.name}` (or `--from DIR`) and then `plstm preprocess {source.name}`.")
    return Store(path)



def _load(cfg, split: str, n: int, seed: int, source: NMNISTSource):
    from .events import EventSplit, stratified_subset

    store = open_store(cfg.root, split, source)
    # one subset for every seed and model (seed 0), so that runs compare on the same data
    idx = stratified_subset(store.records["label"], n, seed=0)
    return EventSplit(store, idx, rho=cfg.rho, seed=seed, train=split == "train",
                      name=source.name)


def load_nmnist(cfg, split: str, n: int, seed: int):
    """The registry's loader of ``nmnist``."""
    return _load(cfg, split, n, seed, NMNIST)


def load_synthetic(cfg, split: str, n: int, seed: int):
    """The registry's loader of ``synthetic-nmnist``."""
    return _load(cfg, split, n, seed, SYNTHETIC)


def download_real(root: Path, from_dir: Path | None, progress: bool, echo) -> str:
    """The registry's download of ``nmnist``."""
    folder = download_nmnist(root, from_dir, progress, echo, NMNIST)
    return f"{NMNIST.name} is in {folder}; next: plstm preprocess {NMNIST.name}"


def prepare_nmnist(root: Path, progress: bool, echo) -> dict:
    """The registry's prepare of ``nmnist``."""
    return preprocess_nmnist(root, progress, echo, NMNIST)


def prepare_synthetic(root: Path, progress: bool, echo) -> dict:
    """The registry's prepare of ``synthetic-nmnist``."""
    return preprocess_nmnist(root, progress, echo, SYNTHETIC)


def synthetic_stores(root: Path) -> list[Path]:
    """The caches the first run on ``synthetic-nmnist`` generates."""
    return [SYNTHETIC.store_path(root, s) for s in SPLITS]


__all__ = [
    "NMNIST",
    "SENSOR",
    "SYNTHETIC",
    "ChecksumError",
    "CorruptRecording",
    "check_md5",
    "decode_recording",
    "download_nmnist",
    "encode_events",
    "md5sum",
    "open_store",
    "preprocess_nmnist",
    "read_events",
]
