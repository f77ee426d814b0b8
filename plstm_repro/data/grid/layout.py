"""Download and placement: the corpus site's archives, the layouts users have (see the package
docstring), the alignment-folder check, and the canonical layout under ``root/<folder>``."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ...stale import remove_stale
from ..archives import MB, Limits, extract_archive, is_archive, name_problem, shown
from ..download import DownloadError, download_file
from .corpus import ALL_SPEAKERS, EXT, KINDS, _spk, resolve_speakers

BASE_URLS = ("https://spandh.dcs.shef.ac.uk/gridcorpus/", "http://spandh.dcs.shef.ac.uk/gridcorpus/")
ARCHIVES = {  # kind -> (folder on the site, archive name)
    "video": ("video", "s{n}.mpg_vcd.zip"),
    "audio": ("audio", "s{n}_50kHz.tar"),
    "align": ("align", "s{n}.tar"),
}
# Member ceilings (archive bombs): a 3 s VCD video is ~0.5 MB, a 3 s 50 kHz wav ~0.3 MB, an
# alignment ~0.3 KB; 4-8x those is corrupt or hostile.
EXTRACT_LIMITS = Limits(member=((".mpg", 4 * MB), (".wav", 4 * MB), (".align", MB // 16)),
                        other=4 * MB)


# lhotse's GRID recipe (lhotse/recipes/grid.py, speaker_fix_map): Zenodo alignment folder ->
# the speaker it really belongs to (identity entries left out). Only used to say whether a
# correction we detect is the known one; the correction itself is made by sentence ids.
ZENODO_ALIGNMENT_FOLDERS = {5: 6, 6: 5, 10: 13, 11: 10, 12: 11, 13: 12, 14: 15, 15: 14, 18: 19,
                            19: 18, 20: 21, 22: 23, 23: 22, 26: 27, 27: 26, 28: 29, 29: 28,
                            32: 33, 33: 32}

_SPK_DIR = re.compile(r"^s(\d{1,2})(?:_\w+)?$", re.IGNORECASE)
_SPK_ARCHIVE = re.compile(r"^s(\d{1,2})(?=[._])", re.IGNORECASE)


def speaker_urls(n: int) -> dict[str, list[str]]:
    """{kind: [URL on each mirror]} of speaker ``n``'s three archives."""
    return {k: [f"{b}s{n}/{d}/{name.format(n=n)}" for b in BASE_URLS]
            for k, (d, name) in ARCHIVES.items()}


def _speaker_of(rel_parts: tuple[str, ...], hint: int | None) -> int | None:
    """Nearest folder named sN (or sN_50kHz ...) above a file, else the archive's hint."""
    for part in reversed(rel_parts[:-1]):
        m = _SPK_DIR.match(part)
        if m:
            return int(m.group(1))
    return hint


def _scan(base: Path, hint: int | None, found: dict, skip: set[Path],
          bad: list[str] | None = None) -> None:
    """Add every .mpg/.wav/.align under ``base`` to found[kind][speaker][id] (lists of paths);
    names a store cannot hold go to ``bad`` ("path: why"), escaped."""
    for dirpath, dirnames, filenames in os.walk(base):
        d = Path(dirpath)
        dirnames[:] = sorted(x for x in dirnames if (d / x).resolve() not in skip)
        for name in sorted(filenames):
            p = d / name
            kind = KINDS.get(p.suffix.lower())
            if kind is None or name.startswith("."):
                continue
            if why := name_problem(name):
                if bad is not None:
                    bad.append(f"{shown(str(p))}: {why}, skipped")
                continue
            spk = _speaker_of(p.relative_to(base).parts, hint)
            if spk is not None:
                found[kind].setdefault(spk, {}).setdefault(p.stem, []).append(p)


def _wav_rate(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        i = head.find(b"fmt ")
        return int.from_bytes(head[i + 12:i + 16], "little") if i >= 0 else 0
    except OSError:
        return 0


def match_alignment_folders(video_ids: dict[int, set[str]],
                            align_ids: dict[int, set[str]]) -> dict[int, dict]:
    """For each speaker with videos: which alignment folder belongs to it, by sentence ids.

    Returns {speaker: {"folder": folder speaker or None, "own": share of the speaker's video
    ids found in its own folder, "share": share in the chosen folder}}. A speaker takes another
    folder only when its own covers under half of its video ids and that other covers at least
    half (and more than its own); otherwise it keeps its own folder (None if it has none)."""
    out = {}
    for s, vids in video_ids.items():
        if not vids:
            continue
        share = {t: len(vids & a) / len(vids) for t, a in align_ids.items()}
        own = share.get(s, 0.0)
        best = max(share, key=lambda t: (share[t], t == s, -abs(t - s)), default=None)
        if own < 0.5 and best is not None and best != s and share[best] >= 0.5:
            out[s] = {"folder": best, "own": own, "share": share[best]}
        else:
            out[s] = {"folder": s if s in align_ids else None, "own": own, "share": own}
    return out


def _place(src: Path, dest: Path, move: bool) -> None:
    """Put ``src`` at ``dest`` atomically: renamed (staged files), else hard-linked or copied."""
    if dest.exists() and dest.stat().st_size == src.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    if move:
        os.replace(src, dest)
        return
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _layout_hint(folder: Path) -> str:
    return (
        "Place the corpus by hand, then run `plstm download grid --from DIR`, with DIR holding "
        "any of:\n"
        "  - the corpus site's archives (sN.mpg_vcd.zip, sN_50kHz.tar, sN.tar), or them unpacked "
        "by kind: video/sN/<id>.mpg, audio/sN/<id>.wav, align/sN/align/<id>.align\n"
        "  - the Zenodo release (doi 10.5281/zenodo.3625687) unpacked: sN/<id>.mpg, "
        "audio_25k/sN/<id>.wav, alignments/sN/<id>.align (or its zips)\n"
        f"or put the archives in {folder / 'archives'}/sN/{{video,audio,align}}/ and run "
        "`plstm download grid` again.")


def download_grid(root: Path, speakers: list[int] | None = None, from_dir: Path | None = None,
                  progress: bool = True, echo=print, folder: str = "GRID",
                  keep_archives: bool = True) -> Path:
    """Fetch (or take from ``from_dir``) GRID speakers into ``root/<folder>``'s canonical layout.

    Args:
        root: data root.
        speakers: speaker numbers (1..34; 21 is skipped with a message). None: all 33 with
            video from the web, or every speaker found in ``from_dir``.
        from_dir: a local folder in one of the layouts of the module docstring (or archives);
            files are hard-linked or copied, never moved or changed.
        progress: download bars.
        echo: where messages go.
        folder: the dataset folder under ``root`` (``SyntheticGRID`` for the synthetic corpus).
        keep_archives: keep downloaded archives under ``archives/`` (default) or remove them
            once extracted and placed.

    Returns:
        ``root / folder``.

    Raises:
        DownloadError: offline or a download failed; one message names every URL still needed
            and the layouts to place by hand.
        FileNotFoundError: ``from_dir`` lacks a requested speaker's videos, audio or alignments.
        ArchiveError (a ValueError): a corrupt archive (named).
    """
    root = Path(root)
    dest = root / folder
    dest.mkdir(parents=True, exist_ok=True)
    if from_dir is not None:
        src = Path(from_dir)
        if not src.is_dir():
            raise FileNotFoundError(f"--from {src}: no such folder.\n{_layout_hint(dest)}")
        want = None if speakers is None else resolve_speakers(speakers, echo)
        _ingest(src, dest, want, echo, progress)
        return dest
    want = resolve_speakers(speakers, echo)
    todo = [s for s in want if not (dest / _spk(s) / ".complete").is_file()]
    for i, s in enumerate(todo):
        got = []
        for kind, urls in speaker_urls(s).items():
            d, name = ARCHIVES[kind]
            path = dest / "archives" / _spk(s) / d / name.format(n=s)
            try:
                got.append(download_file(urls, path, None, progress, dataset="grid", echo=echo))
            except DownloadError as e:
                tried = [ln.strip() for ln in str(e).splitlines() if ln.startswith("  http")]
                missing = [u[0] for t in todo[i:] for u in speaker_urls(t).values()]
                raise DownloadError(
                    f"GRID: could not download {path.name} of speaker {s}:\n  "
                    + "\n  ".join(tried or [str(e).splitlines()[0]])
                    + f"\nStill needed ({len(missing)} files, also under http://):\n  "
                    + "\n  ".join(missing) + "\n" + _layout_hint(dest)) from None
        _ingest(dest / "archives" / _spk(s), dest, [s], echo, progress)
        if not keep_archives:
            for p in got:
                p.unlink(missing_ok=True)
    return dest


def _ingest(src: Path, dest: Path, want: list[int] | None, echo, progress: bool = False) -> None:
    """Scan ``src`` (files and archives), match alignments to videos, place ``want`` speakers."""
    found = {k: {} for k in KINDS.values()}
    staging = dest / f".staging-{os.getpid()}"
    remove_stale(dest, recursive=True)  # staging folders, partial copies of killed runs
    bad: list[str] = []
    s_res, d_res = src.resolve(), dest.resolve()
    # --from a folder that holds our own output (e.g. --from data): do not read that back
    own = {d_res} if d_res != s_res and d_res.is_relative_to(s_res) else set()
    try:
        archives = [p for p in sorted(src.rglob("*")) if p.is_file() and is_archive(p)
                    and not any(p.resolve().is_relative_to(o) for o in own)]
        from tqdm import tqdm

        for i, a in enumerate(tqdm(archives, desc="extract", unit="archive", leave=False,
                                   disable=not progress or not archives)):
            m = _SPK_ARCHIVE.match(a.name)
            hint = int(m.group(1)) if m else _speaker_of(a.relative_to(src).parts, None)
            out = staging / f"{i:03d}"

            def keep(name: str, hint=hint) -> bool:
                kind = KINDS.get(Path(name).suffix.lower())
                if kind is None:
                    return False
                if kind == "align" or want is None:  # every alignment: for the folder check
                    return True
                return _speaker_of(Path(name.replace("\\", "/")).parts, hint) in want

            _, refused = extract_archive(a, out, keep, limits=EXTRACT_LIMITS)
            for r in refused:
                echo(f"GRID: {shown(str(a))}: {r}")
            _scan(out, hint, found, set(), bad)
        _scan(src, None, found, own | {staging.resolve()}, bad)
        for b in bad:
            echo(f"GRID: {b}")
        _place_all(found, src, dest, want, echo, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place_all(found: dict, src: Path, dest: Path, want: list[int] | None, echo,
               move_staged: Path) -> None:
    videos = {s: set(ids) for s, ids in found["video"].items()}
    aligns = {s: set(ids) for s, ids in found["align"].items()}
    if want is None:
        want = resolve_speakers(sorted(s for s in videos if s in ALL_SPEAKERS), echo)
        if not want:
            raise FileNotFoundError(f"--from {src}: no GRID video (.mpg) found in any speaker "
                                    f"folder sN.\n{_layout_hint(dest)}")
    match = match_alignment_folders({s: videos.get(s, set()) for s in want}, aligns)
    layout_path = dest / "layout.json"
    layout = json.loads(layout_path.read_text()) if layout_path.is_file() else {}
    problems = []
    for s in want:
        info = {"source": str(src), "counts": {}}
        m = match.get(s)
        afolder = s if m is None else m["folder"]
        if m is not None and afolder != s:
            known = ZENODO_ALIGNMENT_FOLDERS.get(afolder) == s
            echo(f"GRID: s{s}: its alignment folder s{s} holds {m['own']:.0%} of its video ids; "
                 + (f"taking folder s{afolder} ({m['share']:.0%})" if afolder is not None else
                    "no other folder matches: no alignments for this speaker")
                 + (" (the known swap of the Zenodo copy)" if known else ""))
            info["alignment_folder"] = afolder
            info["alignment_share"] = {"own": round(m["own"], 4), "chosen": round(m["share"], 4)}
            info["known_zenodo_swap"] = known
        per_kind = {"video": found["video"].get(s, {}), "audio": found["audio"].get(s, {}),
                    "align": found["align"].get(afolder, {}) if afolder is not None else {}}
        if m is not None and afolder is not None and afolder != s:
            vids = videos.get(s, set())
            per_kind["align"] = {k: v for k, v in per_kind["align"].items() if k in vids}
        for kind, ids in per_kind.items():
            for sid, paths in ids.items():
                p = paths[0]
                if kind == "audio" and len(paths) > 1:  # the raw 50 kHz over 25 kHz copies
                    p = max(paths, key=_wav_rate)
                staged = p.resolve().is_relative_to(move_staged.resolve())
                _place(p, dest / _spk(s) / kind / (sid + EXT[kind]), move=staged)
            info["counts"][kind] = len(ids)
        missing = [k for k, ids in per_kind.items() if not ids]
        if missing:
            problems.append(f"s{s}: no {', '.join(missing)} files")
            (dest / _spk(s) / ".complete").unlink(missing_ok=True)
        else:
            (dest / _spk(s)).mkdir(parents=True, exist_ok=True)
            (dest / _spk(s) / ".complete").write_text(json.dumps(info["counts"]) + "\n")
        layout[_spk(s)] = info
        echo(f"GRID: s{s}: {info['counts'].get('video', 0)} videos, "
             f"{info['counts'].get('audio', 0)} wavs, {info['counts'].get('align', 0)} "
             f"alignments in {dest / _spk(s)}")
    for marker in ("SYNTHETIC.txt",):
        if (src / marker).is_file():
            shutil.copyfile(src / marker, dest / marker)
    tmp = layout_path.with_name(layout_path.name + ".part")
    tmp.write_text(json.dumps(layout, indent=1, sort_keys=True))
    os.replace(tmp, layout_path)
    if problems:
        raise FileNotFoundError(f"GRID: incomplete speakers in {src}: " + "; ".join(problems)
                                + f".\n{_layout_hint(dest)}")

