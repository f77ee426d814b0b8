"""The features of one utterance (a map over the manifest's records): the face crops of its
video, the MFCCs of its audio at both hops and its word labels, as the rows a store takes; and
the process pool that runs that map over a corpus."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .audio import HI_HOP_MS, LO_HOP_MS, mfcc39, read_wav
from .corpus import AUDIO_SLACK_MS, FRAME_MS, N_FRAMES, _Broken
from .manifest import Blame, timed_words
from .video import read_face_crops


def process_utterance(video: Path | None, audio: Path | None, align: Path | None,
                      sid: str) -> dict:
    """Everything one utterance contributes to a store, or why it cannot.

    Cheap checks first (files present, alignment, wav header), then the video, then the MFCCs.
    Returns {"ok": True, "rows": {table: {field: array}}, "no_face", "frames", "mfcc_frames",
    "video_s", "audio_s" (CPU seconds), "rate"} or {"ok": False, "kind", "path", "why"}.
    Never raises for bad input; anything unforeseen is returned as kind "error"."""
    blame = Blame(video or audio or align)
    try:
        words = timed_words(video, audio, align, sid, blame)
        t0 = time.process_time()
        rate, sig = _read_audio(audio)
        t1 = time.process_time()
        blame.path = video
        frames, no_face = _read_video(video, words)
        t2 = time.process_time()
        video_ms = len(frames) * FRAME_MS
        _check_lengths(audio, align, len(sig) * 1000.0 / rate, video_ms, words, blame)
        t3 = time.process_time()
        sig = sig[: round(video_ms * rate / 1000)]
        hi, t_hi = mfcc39(sig, rate, HI_HOP_MS)
        lo, t_lo = mfcc39(sig, rate, LO_HOP_MS)
        t4 = time.process_time()
    except _Broken as e:
        return {"ok": False, "kind": e.kind, "path": str(blame.path), "why": e.why}
    except Exception as e:  # noqa: BLE001 -- one odd file must not end a 33,000-file run
        return {"ok": False, "kind": "error", "path": str(blame.path),
                "why": f"{blame.path}: {type(e).__name__}: {e}"}
    return {"ok": True, "rows": _rows(frames, (hi, t_hi), (lo, t_lo), words),
            "no_face": int(no_face), "frames": len(frames), "mfcc_frames": len(hi) + len(lo),
            "video_s": t2 - t1, "audio_s": (t1 - t0) + (t4 - t3), "rate": rate}


def _read_audio(audio: Path) -> tuple[int, np.ndarray]:
    try:
        rate, sig = read_wav(audio)
    except ValueError as e:
        raise _Broken("wav_unreadable", str(e)) from None
    if len(sig) == 0:
        raise _Broken("wav_empty", f"{audio}: no samples")
    return rate, sig


def _read_video(video: Path, words) -> tuple[np.ndarray, int]:
    frames, no_face = read_face_crops(video)
    n = len(frames)
    video_ms, last = n * FRAME_MS, max(b for _, _, b in words)
    if n < N_FRAMES and last > video_ms:  # short, and missing speech (not just silence)
        raise _Broken("video_truncated", f"{video}: {n} frames ({video_ms:.0f} ms) end "
                                         f"before the words do ({last:.0f} ms); expected "
                                         f"{N_FRAMES}")
    return frames, no_face


def _check_lengths(audio: Path, align: Path, audio_ms: float, video_ms: float, words,
                   blame: Blame) -> None:
    """The audio covers the video, and the words end within it (one frame of slack)."""
    blame.path = audio
    if audio_ms < video_ms - AUDIO_SLACK_MS:
        raise _Broken("audio_short", f"{audio}: {audio_ms:.0f} ms of audio for "
                                     f"{video_ms:.0f} ms of video")
    blame.path = align
    last = max(b for _, _, b in words)
    if last > video_ms + FRAME_MS:
        raise _Broken("align_bad", f"{align}: words end at {last:.0f} ms, after the "
                                   f"{video_ms:.0f} ms video (units are 1/25000 s)")


def _rows(frames: np.ndarray, hi: tuple, lo: tuple, words) -> dict[str, dict[str, np.ndarray]]:
    """The utterance's rows of each store table (see ``cache.STORE_TABLES``)."""
    w = np.asarray(words, dtype=np.float64).reshape(-1, 3)
    return {
        "video": {"frame": frames, "t": (np.arange(len(frames)) * FRAME_MS).astype(np.float32)},
        "mfcc_hi": {"feat": hi[0], "t": hi[1]},
        "mfcc_lo": {"feat": lo[0], "t": lo[1]},
        "words": {"word": w[:, 0].astype(np.uint8), "start": w[:, 1].astype(np.float32),
                  "end": w[:, 2].astype(np.float32)},
    }


def _process_task(task: tuple) -> dict:
    return process_utterance(*task)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def run(utterances: list, workers: int, echo=print):
    """Results of process_utterance over the manifest's utterances, in order: a pool of spawned
    processes when workers > 1 (OpenCV's thread pool does not survive a fork:
    opencv/opencv#5150), else this process. If the pool dies (a worker killed, e.g. out of
    memory, or a caller without an ``if __name__ == "__main__":`` guard), the remaining
    utterances run here."""
    args = [u.files for u in utterances]
    done = 0
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker) as ex:
                for r in ex.map(_process_task, args, chunksize=2):
                    done += 1
                    yield r
            return
        except BrokenProcessPool as e:
            echo(f"GRID: the process pool failed ({e}); the remaining {len(args) - done} "
                 f"utterances run in this process")
    yield from map(_process_task, args[done:])
