"""The store-writing stage: the features of every utterance of the manifest into two
memory-mapped stores (:mod:`..store`) at ``root/<folder>/cache/train`` and ``.../test``, their
tables (``STORE_TABLES``), the settings that make them (``SETTINGS``, part of their key) and the
summary of a run (counts, broken files and why, throughput)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import features
from .audio import DELTA_N, HI_HOP_MS, LO_HOP_MS, NUMCEP, WIN_MS
from .corpus import (
    ALIGN_UNITS_PER_S,
    AUDIO_SLACK_MS,
    FPS,
    N_FRAMES,
    SILENCE,
    VOCABULARY,
    resolve_speakers,
)
from .holdout import TEST_FRACTION, held_out
from .manifest import fingerprint, inventory, speakers_in
from .video import CROP, DETECT_HEIGHT, HAAR_CASCADE

CACHE_VERSION = 1

STORE_TABLES = {
    "video": {"frame": ("u1", (CROP, CROP)), "t": "<f4"},
    "mfcc_hi": {"feat": ("<f4", (3 * NUMCEP,)), "t": "<f4"},
    "mfcc_lo": {"feat": ("<f4", (3 * NUMCEP,)), "t": "<f4"},
    "words": {"word": "u1", "start": "<f4", "end": "<f4"},
}
STORE_RECORDS = {"speaker": "u1", "no_face": "<u2"}

SETTINGS = {
    "cache_version": CACHE_VERSION,
    "video": {"fps": FPS, "t": "40 k ms, first frame at 0", "crop": [CROP, CROP],
              "face_detector": f"OpenCV Haar cascade {HAAR_CASCADE}",
              "detect_height": DETECT_HEIGHT, "scale_factor": 1.1, "min_neighbors": 5,
              "min_size": "max(24, detect rows // 5) px",
              "tracking": "first a window 2x the previous box, faces 0.75-1.33x its size; "
                          "the whole frame when nothing is found there",
              "no_face": "last good box reused (first box before the first detection)",
              "min_frames": N_FRAMES},
    "mfcc": {"library": "python_speech_features", "numcep": NUMCEP, "dims": 3 * NUMCEP,
             "window_ms": WIN_MS, "hop_ms": {"hi": HI_HOP_MS, "lo": LO_HOP_MS},
             "winfunc": "hamming", "nfft": "next power of two of the window",
             "append_energy": True, "preemph": 0.97, "nfilt": 26, "ceplifter": 22,
             "delta_n": DELTA_N, "signal": "int16 / 32768, cut at the video's length",
             "t": "end of each window: (k hop + win) / rate, ms"},
    "words": {"align_units_per_s": ALIGN_UNITS_PER_S, "t": "ms = units / 25",
              "excluded": list(SILENCE)},
    "audio_slack_ms": AUDIO_SLACK_MS,
    "split": {"test_fraction": TEST_FRACTION,
              "method": "per speaker: numpy default_rng([seed, speaker]) permutation of the "
                        "sorted sentence ids; the first round(10%) (at least 1 of 2+) are test"},
}


def preprocess_grid(root: Path, speakers: list[int] | None = None, progress: bool = True,
                    echo=print, workers: int | None = None, seed: int = 0,
                    folder: str = "GRID") -> dict:
    """Face crops, MFCCs and word labels of every utterance into two memory-mapped stores.

    Reads ``root/<folder>`` (canonical layout), writes ``root/<folder>/cache/train`` and
    ``.../test`` (see the module docstring and ``STORE_TABLES``) and returns the summary (also
    stored as each store's ``info``). When both stores exist and were made from the same
    speakers, seed and settings, nothing is done and the stored summary is returned.

    Args:
        speakers: None = every speaker folder present.
        workers: processes (None: all cores; 1: in this process).
        seed: seed of the 90/10 split.

    Raises:
        FileNotFoundError: no such folder or no speaker in it (the message says how to get them).
    """
    base = Path(root) / folder
    speakers = _speakers_to_read(base, speakers, echo)
    bad_names: list[str] = []
    utterances = inventory(base, speakers, bad_names)  # the manifest
    for b in bad_names:
        echo(f"GRID: {b}")
    key = {"speakers": speakers, "seed": seed, "settings": SETTINGS, "folder": folder,
           "files": fingerprint(utterances)}
    cache = base / "cache"
    stored = _up_to_date(cache, key, echo)
    if stored is not None:
        return stored
    workers = max(1, min(workers or os.cpu_count() or 1, len(utterances) or 1))
    summary = _summary_head(base, folder, key, speakers, seed)
    rest, wall = _write_stores(cache, utterances, held_out(utterances, seed), workers, summary,
                               progress, echo)
    summary.update(rest)
    _report(summary, len(speakers), wall, echo)
    return summary


def _speakers_to_read(base: Path, speakers: list[int] | None, echo) -> list[int]:
    present = speakers_in(base)
    if not present:
        raise FileNotFoundError(
            f"GRID: no speaker folders (sN/) in {base}. Run `plstm download grid` "
            f"(or `--from DIR`) first.")
    speakers = present if speakers is None else resolve_speakers(speakers, echo)
    absent = [s for s in speakers if s not in present]
    if absent:
        raise FileNotFoundError(f"GRID: speakers {absent} are not in {base} (have {present}); "
                                f"run `plstm download grid --speakers ...` first")
    return speakers


def _up_to_date(cache: Path, key: dict, echo) -> dict | None:
    """The stored summary when both stores were made with this key, else None."""
    from ..store import Store

    if not (Store.exists(cache / "train") and Store.exists(cache / "test")):
        return None
    info = Store(cache / "train").info
    if info.get("key") == json.loads(json.dumps(key)):
        echo(f"GRID: stores in {cache} are up to date; nothing to do")
        return {k: v for k, v in info.items() if k != "split"}
    echo(f"GRID: stores in {cache} were made from other files, speakers, seed or settings: "
         f"rebuilding")
    return None


def _summary_head(base: Path, folder: str, key: dict, speakers: list[int], seed: int) -> dict:
    layout = base / "layout.json"
    return {
        "dataset": folder, "folder": str(base), "key": key,
        "synthetic": (base / "SYNTHETIC.txt").is_file(),
        "settings": SETTINGS, "speakers": speakers, "seed": seed,
        "vocabulary": list(VOCABULARY),
        "layout": json.loads(layout.read_text()) if layout.is_file() else {},
    }


def _write_stores(cache: Path, utterances: list, test: set[str], workers: int, head: dict,
                  progress: bool, echo) -> tuple[dict, float]:
    """Each utterance's features into its store; commits both (with the summary: ``head`` and
    what this returns, with the wall time) only when every utterance is done."""
    from tqdm import tqdm

    from ..store import StoreWriter

    tally = _Tally(len(utterances))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    bar = tqdm(total=N_FRAMES * len(utterances), unit="frame", desc=f"preprocess {head['dataset']}",
               disable=not progress, smoothing=0.1)
    cache.mkdir(parents=True, exist_ok=True)
    with StoreWriter(cache / "train", STORE_TABLES, STORE_RECORDS) as wtr, \
            StoreWriter(cache / "test", STORE_TABLES, STORE_RECORDS) as wte:
        for u, r in zip(utterances, features.run(utterances, workers, echo), strict=True):
            if not r["ok"]:
                tally.add_broken(r, u.speaker)
                bar.update(N_FRAMES)
                bar.set_postfix(broken=tally.counts["broken"])
                continue
            split = "test" if u.name in test else "train"
            (wte if split == "test" else wtr).add(
                u.name, records={"speaker": u.speaker, "no_face": min(r["no_face"], 65535)},
                **r["rows"])
            tally.add_good(r, split)
            bar.update(r["frames"])
        bar.close()
        per_speaker: dict[int, int] = {}
        for u in utterances:
            per_speaker[u.speaker] = per_speaker.get(u.speaker, 0) + 1
        wall = time.perf_counter() - t0
        rest = tally.summary(per_speaker, workers, wall, load0)
        wte.commit({**head, **rest, "split": "test"})
        wtr.commit({**head, **rest, "split": "train"})
    return rest, wall


class _Tally:
    """The counts of a preprocessing run, utterance by utterance."""

    def __init__(self, sentences: int):
        self.counts = {"sentences": sentences, "good": 0, "broken": 0, "train": 0, "test": 0,
                       "video_frames": 0, "no_face_frames": 0, "files_with_no_face_frames": 0,
                       "mfcc_frames": 0, "words": 0, "frames_per_video": {}}
        self.broken: dict[str, list[str]] = {}
        self.why: dict[str, str] = {}
        self.rates: dict[str, int] = {}
        self.short_by_spk: dict[int, int] = {}
        self.video_s = self.audio_s = 0.0

    def add_broken(self, r: dict, speaker: int) -> None:
        self.counts["broken"] += 1
        self.broken.setdefault(r["kind"], []).append(r["path"])
        self.why[r["path"]] = r["why"]
        if r["kind"] == "audio_short":
            self.short_by_spk[speaker] = self.short_by_spk.get(speaker, 0) + 1

    def add_good(self, r: dict, split: str) -> None:
        c = self.counts
        c["good"] += 1
        c[split] += 1
        c["video_frames"] += r["frames"]
        per = c["frames_per_video"]  # how many kept videos have each frame count
        per[str(r["frames"])] = per.get(str(r["frames"]), 0) + 1
        c["no_face_frames"] += r["no_face"]
        c["files_with_no_face_frames"] += r["no_face"] > 0
        c["mfcc_frames"] += r["mfcc_frames"]
        c["words"] += len(r["rows"]["words"]["word"])
        self.rates[str(r["rate"])] = self.rates.get(str(r["rate"]), 0) + 1
        self.video_s += r["video_s"]
        self.audio_s += r["audio_s"]

    def notes(self, per_speaker: dict[int, int]) -> list[str]:
        """Speakers most of whose wavs are shorter than their videos: a likely wrong source."""
        return [f"s{s}: {k} of {per_speaker[s]} wavs are shorter than their video: "
                f"end-pointed audio (silence cut, as reported of the Zenodo "
                f"audio_25k and the site's 25 kHz sN.tar)? Its time base does not "
                f"match the video and the alignments; use the site's 50 kHz audio"
                for s, k in sorted(self.short_by_spk.items())
                if k > per_speaker.get(s, 0) / 2]

    def summary(self, per_speaker: dict[int, int], workers: int, wall: float,
                load0: tuple) -> dict:
        c = self.counts
        return {
            "counts": c,
            "broken": {k: sorted(v) for k, v in sorted(self.broken.items())},
            "broken_why": self.why,
            "audio_rates": self.rates,
            "notes": self.notes(per_speaker),
            "throughput": {
                "note": "per CPU-second of the workers: face crop = decode + cascade + crop; "
                        "mfcc = wav read + MFCC at both hops",
                "workers": workers, "wall_s": round(wall, 2),
                "load_avg_before": [round(x, 2) for x in load0],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
                "sentences_per_s": round(c["sentences"] / wall, 2) if wall else None,
                "face_crop_frames_per_cpu_s":
                    round(c["video_frames"] / self.video_s, 1) if self.video_s else None,
                "mfcc_frames_per_cpu_s":
                    round(c["mfcc_frames"] / self.audio_s, 1) if self.audio_s else None,
                "video_frames_per_s_wall": round(c["video_frames"] / wall, 1) if wall
                else None,
            },
        }


def _report(summary: dict, n_speakers: int, wall: float, echo) -> None:
    counts, workers = summary["counts"], summary["throughput"]["workers"]
    echo(f"GRID: {counts['good']} utterances ({counts['train']} train, {counts['test']} test) "
         f"from {n_speakers} speakers in {wall:.1f} s with {workers} "
         f"workers; {counts['broken']} broken; {counts['no_face_frames']} frames without a face; "
         "frames per video: " + (", ".join(f"{k}: {v}" for k, v in
                                        sorted(counts["frames_per_video"].items(),
                                               key=lambda kv: -int(kv[0]))) or "none"))
    for kind, paths in summary["broken"].items():
        echo(f"GRID: broken ({kind}, {len(paths)}): " + ", ".join(paths[:20])
             + (" ..." if len(paths) > 20 else ""))
    for n in summary["notes"]:
        echo("GRID: note: " + n)
