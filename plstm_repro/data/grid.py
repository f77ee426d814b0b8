"""GRID audio-visual corpus (Cooke et al. 2006), the raw-data layer of sec. 3.4 of Neil et al. 2016.

34 talkers (speaker 21 has no video) x 1000 sentences of the grammar
``verb colour preposition letter digit adverb`` ("bin blue at f two now"), 51 words. A sentence's
id spells it: one letter per word, ``z`` for zero (``bbaf2n``).

Download (:func:`download_grid`)
    From the corpus site (``BASE_URLS``), per speaker N: ``sN/video/sN.mpg_vcd.zip`` (25 fps
    MPEG-1 video, 75 frames = 3 s), ``sN/audio/sN_50kHz.tar`` (the raw 50 kHz wavs) and
    ``sN/align/sN.tar`` (word alignments), through the resumable downloader of :mod:`.download`.
    No md5 or size is published, so a download is checked against the server's Content-Length
    (there) and each archive by reading every member on extraction (a truncated or corrupt one
    raises :class:`ArchiveError` naming it). The archives are kept under
    ``archives/sN/{video,audio,align}/`` (as tonic keeps its zips; ``keep_archives=False``
    removes them once extracted and placed). ``from_dir`` takes the layouts users have:

    - the corpus site's archives unpacked by kind: ``video/sN/<id>.mpg``, ``audio/sN/<id>.wav``,
      ``align/sN/align/<id>.align``;
    - the Zenodo re-release (doi 10.5281/zenodo.3625687): ``sN/<id>.mpg``,
      ``audio_25k/sN/<id>.wav``, ``alignments/sN/<id>.align``;
    - the archives themselves, of either source (``sN.mpg_vcd.zip``, ``sN_50kHz.tar``, ``sN.tar``,
      ``sN.zip``, ``audio_25k.zip``, ``alignments.zip``), in any folder below ``from_dir``.

    A file's kind comes from its extension and its speaker from the nearest folder named ``sN``
    (or ``sN_...``) above it, else from the archive's name. Archives are untrusted
    (:mod:`.archives`: nothing is written outside the target folder, links are never made).
    Where two wavs of one sentence are found, the one with the higher sample rate is kept.

    The Zenodo copy has several speakers' alignment folders swapped (lhotse's GRID recipe,
    PR #1501/#1502, maps s5/s6, s14/s15, s18/s19, s22/s23, s26/s27, s28/s29, s32/s33, s10-s13
    rotated and s20 -> s21; see ``ZENODO_ALIGNMENT_FOLDERS``; the corpus site's copy is not
    affected). We correct it from the data rather than from that map: each speaker's alignments
    are matched to its videos by sentence id (:func:`match_alignment_folders`). A speaker whose
    own alignment folder holds under half of its video ids takes the folder that holds at
    least half; each correction is printed, recorded in ``layout.json`` with the shares, and
    flagged when it is the known swap. Two speakers share ~1.6% of their sentences (1000 each
    of 64,000 possible), so the test cannot confuse them.

Canonical layout (what :func:`download_grid` leaves under ``root/<folder>``, default ``GRID``)::

    sN/video/<id>.mpg   sN/audio/<id>.wav   sN/align/<id>.align   sN/.complete
    layout.json (sources, alignment-folder corrections)    archives/ (downloads)
    cache/train, cache/test (the stores written by :func:`preprocess_grid`)

Units of the ``.align`` files: 1/25,000 s (40 us; 1,000 units per 40 ms video frame), so
ms = units / 25. Evidence: published GRID alignments end at 74500 (e.g. bbaf2n:
``53000 74500 sil``, quoted in LipNet-style readers) for 3 s utterances (75 frames at 25 fps):
74500 units = 2.98 s; those readers divide by 1000 to get a video frame index ("the begining
frame id of a word"), the same unit. lhotse's GRID recipe divides by 1000 and calls the result
seconds, which would make each utterance 74.5 s long; we do not follow it. The corpus site's
own description of the units was not reachable from here.

Preprocessing (:func:`preprocess_grid`), per utterance, over a process pool:

- video: every frame through OpenCV's Haar frontal-face cascade
  (``cv2.data.haarcascades + "haarcascade_frontalface_default.xml"``, run on the frame scaled to
  ``DETECT_HEIGHT`` rows for speed; the box is mapped back and cut from the full-resolution
  frame), the largest face's box cropped, grayscale, resized to 48x48 (``INTER_AREA``). Where no
  face is found the last good box is reused (frames before the first detection take the first
  box) and the frame is counted. Frame k has ``t = 40 k`` ms (first frame at 0).
- audio: 39-d MFCC (13 from ``python_speech_features.mfcc``, Hamming window, c0 replaced by
  the log frame energy, + ``delta(N=2)`` + delta of the delta), 25 ms windows at a 10 ms hop
  (``mfcc_hi``) and at a 40 ms hop (``mfcc_lo``), ``nfft`` the next power of two of the window
  (2048 at 50 kHz, 1024 at 25 kHz). Only whole windows inside the audio are used (no zero
  padding at the end), and the audio is cut at the video's length.

  **MFCC timestamps are the end of each window**: frame k covers samples
  ``[k hop, k hop + win)`` and has ``t = (k hop + win) / rate`` in ms, i.e. 25, 35, 45, ... ms
  (hi) and 25, 65, 105, ... ms (lo). That is when the frame's audio has been heard in full, so
  a model that reads the network out at a word's end never sees audio after it, and a Phased
  LSTM whose time gate opens at the stream's timestamps updates exactly when the feature could
  exist in an online system. (The window centre would put each feature 12.5 ms before all its
  samples were heard.) The delta features are the usual non-causal regression over +-2 frames
  (delta-delta: +-4), so they use up to 40 ms (hi) / 160 ms (lo) of later audio; the timestamp
  does not include that look-ahead.
- labels: the word segments of the ``.align`` file without ``sil`` and ``sp``, as indices into
  ``VOCABULARY`` with start and end in ms.
- broken inputs are reported with their paths, never a crash halfway: unreadable video,
  truncated video (fewer than 75 frames *and* ending before the last word does: many real
  videos have 74 frames, their last one in the final silence, and are kept), no face in any
  frame, missing video/audio/alignment,
  unreadable or empty wav, audio shorter than the video (by more than one 40 ms frame),
  unreadable alignment (or a word outside the vocabulary, or times past the video), and an
  alignment whose words differ from the sentence its id spells.
- a seeded random 90/10 split of sentences (per speaker, over every sentence id found, so the
  split does not move when a file breaks or another speaker is added).

Two stores (:mod:`.store`) at ``root/<folder>/cache/train`` and ``.../test``; see
``STORE_TABLES``. Record names ``sN/<id>``; per record ``speaker`` and ``no_face`` (frames
without a detected face); ``info`` holds the summary.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from ..stale import remove_stale
from .archives import MB, ArchiveError, Limits, extract_archive, is_archive, name_problem, shown
from .download import DownloadError, download_file

# --- the corpus ---------------------------------------------------------------------------

BASE_URLS = ("https://spandh.dcs.shef.ac.uk/gridcorpus/", "http://spandh.dcs.shef.ac.uk/gridcorpus/")
ALL_SPEAKERS = tuple(range(1, 35))
NO_VIDEO = (21,)  # speaker 21's video was never released
ARCHIVES = {  # kind -> (folder on the site, archive name)
    "video": ("video", "s{n}.mpg_vcd.zip"),
    "audio": ("audio", "s{n}_50kHz.tar"),
    "align": ("align", "s{n}.tar"),
}
KINDS = {".mpg": "video", ".wav": "audio", ".align": "align"}
EXT = {v: k for k, v in KINDS.items()}
# Member ceilings (archive bombs): a 3 s VCD video is ~0.5 MB, a 3 s 50 kHz wav ~0.3 MB, an
# alignment ~0.3 KB; 4-8x those is corrupt or hostile.
EXTRACT_LIMITS = Limits(member=((".mpg", 4 * MB), (".wav", 4 * MB), (".align", MB // 16)),
                        other=4 * MB)

VERBS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvwxyz" if c != "w")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
GRAMMAR = (VERBS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
VOCABULARY = VERBS + COLOURS + PREPOSITIONS + LETTERS + DIGITS + ADVERBS
WORD_INDEX = {w: i for i, w in enumerate(VOCABULARY)}
SILENCE = ("sil", "sp")

# lhotse's GRID recipe (lhotse/recipes/grid.py, speaker_fix_map): Zenodo alignment folder ->
# the speaker it really belongs to (identity entries left out). Only used to say whether a
# correction we detect is the known one; the correction itself is made by sentence ids.
ZENODO_ALIGNMENT_FOLDERS = {5: 6, 6: 5, 10: 13, 11: 10, 12: 11, 13: 12, 14: 15, 15: 14, 18: 19,
                            19: 18, 20: 21, 22: 23, 23: 22, 26: 27, 27: 26, 28: 29, 29: 28,
                            32: 33, 33: 32}

# --- settings -----------------------------------------------------------------------------

FPS = 25
FRAME_MS = 1000.0 / FPS
N_FRAMES = 75  # every GRID video: 3 s at 25 fps
# Decoding bounds: a video longer or larger than these is not a GRID video (corrupt or hostile)
# and is named and skipped before its frames fill memory (1,500 frames at 640x480: 460 MB).
MAX_FRAMES = 2 * N_FRAMES
MAX_FRAME_PIXELS = 1280 * 720  # GRID: 360x288
ALIGN_UNITS_PER_S = 25_000  # 1 unit = 40 us = 1/1000 of a video frame
CROP = 48
DETECT_HEIGHT = 144  # frames are scaled to this many rows for the cascade (GRID: 288 -> 144)
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
WIN_MS, HI_HOP_MS, LO_HOP_MS = 25, 10, 40
NUMCEP, DELTA_N = 13, 2
AUDIO_SLACK_MS = FRAME_MS  # audio may end this much before the video and still count as whole
TEST_FRACTION = 0.1
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


# --- small pieces -------------------------------------------------------------------------

def _spk(n: int) -> str:
    return f"s{n}"


def resolve_speakers(speakers: list[int] | None, echo=print) -> list[int]:
    """Validate speaker numbers (1..34), drop 21 (no video) with a message, sort, dedupe."""
    speakers = list(ALL_SPEAKERS) if speakers is None else [int(s) for s in speakers]
    bad = [s for s in speakers if s not in ALL_SPEAKERS]
    if bad:
        shown_bad = ", ".join(map(str, bad[:5])) + (f", ... ({len(bad)} in all)"
                                                    if len(bad) > 5 else "")
        raise ValueError(f"GRID speakers are 1..34, got {shown_bad}")
    for s in NO_VIDEO:
        if s in speakers:
            echo(f"GRID: skipping speaker {s} (the corpus has no video for it)")
    return sorted(set(speakers) - set(NO_VIDEO))


def speaker_urls(n: int) -> dict[str, list[str]]:
    """{kind: [URL on each mirror]} of speaker ``n``'s three archives."""
    return {k: [f"{b}s{n}/{d}/{name.format(n=n)}" for b in BASE_URLS]
            for k, (d, name) in ARCHIVES.items()}


def sentence_words(sid: str) -> list[str] | None:
    """The six words a GRID sentence id spells (``bbaf2n`` -> bin blue at f two now);
    None when ``sid`` is not of that form."""
    if len(sid) != 6:
        return None
    out = []
    for ch, group in zip(sid.lower(), GRAMMAR, strict=True):
        if group is LETTERS:
            word = ch if ch in LETTERS else None
        elif group is DIGITS:
            word = DIGITS[0] if ch in "z0" else DIGITS[int(ch)] if ch.isdigit() else None
        else:
            word = next((w for w in group if w[0] == ch), None)
        if word is None:
            return None
        out.append(word)
    return out


def parse_align(path: Path) -> list[tuple[float, float, str]]:
    """All segments of a GRID ``.align`` file as (start ms, end ms, word), ``sil``/``sp`` included.

    Lines are ``start end word`` in 1/25,000 s. Raises ValueError naming the file and line for
    anything else (fields, non-integers, end before start, segments out of order)."""
    path = Path(path)
    text = path.read_text(encoding="ascii", errors="strict")
    segs, last = [], 0
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        if len(f) != 3 or not f[0].isdigit() or not f[1].isdigit():
            raise ValueError(f"{path}:{i}: expected 'start end word' with integer times in "
                             f"1/25000 s, got {line!r}")
        a, b = int(f[0]), int(f[1])
        if b < a or a < last:
            raise ValueError(f"{path}:{i}: segment {a}-{b} ends before it starts or overlaps "
                             f"the previous one")
        last = b
        segs.append((a * 1000.0 / ALIGN_UNITS_PER_S, b * 1000.0 / ALIGN_UNITS_PER_S, f[2]))
    if not segs:
        raise ValueError(f"{path}: no segments")
    return segs


def align_words(path: Path) -> list[tuple[int, float, float]]:
    """The words of an ``.align`` file (``sil``, ``sp`` dropped) as (vocabulary index, start ms,
    end ms). ValueError (naming the file) for a word outside ``VOCABULARY``."""
    out = []
    for a, b, w in parse_align(path):
        if w in SILENCE:
            continue
        if w not in WORD_INDEX:
            raise ValueError(f"{path}: word {w!r} is not in the 51-word GRID vocabulary")
        out.append((WORD_INDEX[w], a, b))
    return out


def nfft_for(rate: int, win_ms: float = WIN_MS) -> int:
    """The next power of two of the window in samples (1250 at 50 kHz -> 2048; 625 -> 1024)."""
    n = round(rate * win_ms / 1000)
    return 1 << (n - 1).bit_length()


def mfcc39(signal: np.ndarray, rate: int, hop_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """39-d MFCC (13 + delta + delta-delta) of whole 25 ms windows every ``hop_ms``.

    Returns (feat [n, 39] float32, t [n] float32 ms, the end of each window)."""
    from python_speech_features import delta, mfcc

    win = round(rate * WIN_MS / 1000)
    hop = round(rate * hop_ms / 1000)
    if len(signal) < win:
        return np.zeros((0, 3 * NUMCEP), np.float32), np.zeros(0, np.float32)
    n = 1 + (len(signal) - win) // hop
    sig = np.asarray(signal[: (n - 1) * hop + win], dtype=np.float64)  # whole windows only
    c = mfcc(sig, samplerate=rate, winlen=win / rate, winstep=hop / rate, numcep=NUMCEP,
             nfilt=26, nfft=nfft_for(rate), preemph=0.97, ceplifter=22, appendEnergy=True,
             winfunc=np.hamming)
    assert len(c) == n, (len(c), n)
    d = delta(c, DELTA_N)
    dd = delta(d, DELTA_N)
    feat = np.concatenate([c, d, dd], axis=1).astype(np.float32)
    t = ((np.arange(n) * hop + win) * 1000.0 / rate).astype(np.float32)
    return feat, t


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, mono float64 signal in [-1, 1)) of a PCM wav; ValueError naming the file."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():  # extra chunks (LIST ...) are fine
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(str(path), mmap=False)
    except Exception as e:  # noqa: BLE001 -- scipy's parser raises odd types on garbage
        raise ValueError(f"{path}: unreadable wav ({type(e).__name__}: {e})") from None
    if data.ndim == 2:
        data = data[:, 0]
    if data.dtype == np.int16:
        x = data / 32768.0
    elif data.dtype == np.int32:
        x = data / 2147483648.0
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128) / 128.0
    elif data.dtype.kind == "f":
        x = data.astype(np.float64)
    else:
        raise ValueError(f"{path}: unsupported wav sample type {data.dtype}")
    return int(rate), x


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
    c = cv2.CascadeClassifier(path)
    if c.empty():
        raise RuntimeError(f"OpenCV could not load the Haar cascade {path}")
    return c


def detect_face(gray: np.ndarray,
                near: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int] | None:
    """The largest frontal face (x, y, w, h) in full-frame pixels, or None.

    The cascade runs on the frame scaled to ``DETECT_HEIGHT`` rows. With ``near`` (the previous
    frame's box) it first searches a window of twice that box's size around it, for faces of
    0.75-1.33 times its size (a face moves little in 40 ms; ~4x fewer windows to test), and
    the whole frame only when that finds nothing."""
    import cv2

    h = gray.shape[0]
    s = min(1.0, DETECT_HEIGHT / h)
    small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else gray
    cascade = _cascade()
    if near is not None:
        x, y, w, hh = (v * s for v in near)
        x0, y0 = max(0, int(x - w / 2)), max(0, int(y - hh / 2))
        x1, y1 = min(small.shape[1], int(x + 1.5 * w)), min(small.shape[0], int(y + 1.5 * hh))
        lo, hi = max(24, int(0.75 * w)), max(25, int(1.34 * w) + 1)
        boxes = cascade.detectMultiScale(small[y0:y1, x0:x1], scaleFactor=1.1, minNeighbors=5,
                                         minSize=(lo, lo), maxSize=(hi, hi))
        if len(boxes):
            bx, by, bw, bh = max(boxes.tolist(), key=lambda b: b[2] * b[3])
            return (round((bx + x0) / s), round((by + y0) / s), round(bw / s), round(bh / s))
    m = max(24, small.shape[0] // 5)  # faces under a fifth of the frame's height: ignored
    boxes = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(m, m))
    if len(boxes) == 0:
        return None
    x, y, w, hh = max(boxes.tolist(), key=lambda b: b[2] * b[3])
    return (round(x / s), round(y / s), round(w / s), round(hh / s))


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import cv2

    x, y, w, h = box
    H, W = gray.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + w), min(H, y + h)
    return cv2.resize(gray[y0:y1, x0:x1], (CROP, CROP), interpolation=cv2.INTER_AREA)


def read_face_crops(path: Path) -> tuple[np.ndarray, int]:
    """Decode a video and crop the face of every frame: (crops [n, 48, 48] uint8, frames without
    a detected face). Raises _Broken for an unreadable video or one with no face at all."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise _Broken("video_unreadable", f"OpenCV cannot open {path}")
    grays, boxes, last = [], [], None
    try:
        _check_video_size(cap, path, cv2)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if len(grays) == MAX_FRAMES:  # stop here: no GRID utterance needs more
                raise _Broken("video_too_long", f"{path}: more than {MAX_FRAMES} frames (a GRID "
                                                f"video has {N_FRAMES})")
            g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            grays.append(g)
            boxes.append(detect_face(g, near=last))
            last = boxes[-1] or last
    finally:
        cap.release()
    if not grays:
        raise _Broken("video_unreadable", f"no frame could be decoded from {path}")
    found = [b for b in boxes if b is not None]
    if not found:
        raise _Broken("no_face", f"the face detector found no face in any of the {len(grays)} "
                                 f"frames of {path}")
    crops, last = [], found[0]
    for g, b in zip(grays, boxes, strict=True):
        last = b or last
        crops.append(crop_face(g, last))
    return np.stack(crops).astype(np.uint8), sum(b is None for b in boxes)


def _check_video_size(cap, path: Path, cv2) -> None:
    """What the container declares, checked before decoding (a declared 0 means unknown)."""
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if n > MAX_FRAMES:
        raise _Broken("video_too_long", f"{path}: {n} frames declared, over {MAX_FRAMES} (a GRID "
                                        f"video has {N_FRAMES})")
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if w * h > MAX_FRAME_PIXELS:
        raise _Broken("video_too_large", f"{path}: {w}x{h} frames, over {MAX_FRAME_PIXELS} "
                                         f"pixels (GRID: 360x288)")


class _Broken(Exception):
    def __init__(self, kind: str, why: str):
        super().__init__(why)
        self.kind, self.why = kind, why


def process_utterance(video: Path | None, audio: Path | None, align: Path | None,
                      sid: str) -> dict:
    """Everything one utterance contributes to a store, or why it cannot.

    Cheap checks first (files present, alignment, wav header), then the video, then the MFCCs.
    Returns {"ok": True, "rows": {table: {field: array}}, "no_face", "frames", "mfcc_frames",
    "video_s", "audio_s" (CPU seconds), "rate"} or {"ok": False, "kind", "path", "why"}.
    Never raises for bad input; anything unforeseen is returned as kind "error"."""
    path = video or audio or align
    try:
        for kind, p in (("video_missing", video), ("audio_missing", audio),
                        ("align_missing", align)):
            if p is None:
                raise _Broken(kind, f"no {kind.split('_')[0]} file for sentence {sid} "
                                    f"(have {path})")
        path = align
        try:
            words = align_words(align)
        except (ValueError, OSError, UnicodeDecodeError) as e:
            raise _Broken("align_bad", str(e)) from None
        if not words:
            raise _Broken("align_bad", f"{align}: no words besides sil/sp")
        expect = sentence_words(sid)
        got = [VOCABULARY[w] for w, _, _ in words]
        if expect is not None and got != expect:
            raise _Broken("align_mismatch", f"{align}: words {' '.join(got)!r} differ from the "
                                            f"sentence its id spells ({' '.join(expect)!r})")
        path = audio
        t0 = time.process_time()
        if audio.stat().st_size == 0:
            raise _Broken("wav_empty", f"{audio}: empty file")
        for kind, p in (("wav", audio), ("video", video), ("align", align)):  # sizes first
            if (size := p.stat().st_size) > (cap := EXTRACT_LIMITS.ceiling(p.name)):
                raise _Broken(f"{kind}_too_large", f"{p}: {size} bytes, over the {cap} a GRID "
                                                   f"{kind} can hold")
        try:
            rate, sig = read_wav(audio)
        except ValueError as e:
            raise _Broken("wav_unreadable", str(e)) from None
        if len(sig) == 0:
            raise _Broken("wav_empty", f"{audio}: no samples")
        t1 = time.process_time()
        path = video
        frames, no_face = read_face_crops(video)
        n = len(frames)
        video_ms = n * FRAME_MS
        last = max(b for _, _, b in words)
        if n < N_FRAMES and last > video_ms:  # short, and missing speech (not just silence)
            raise _Broken("video_truncated", f"{video}: {n} frames ({video_ms:.0f} ms) end "
                                             f"before the words do ({last:.0f} ms); expected "
                                             f"{N_FRAMES}")
        t2 = time.process_time()
        path = audio
        audio_ms = len(sig) * 1000.0 / rate
        if audio_ms < video_ms - AUDIO_SLACK_MS:
            raise _Broken("audio_short", f"{audio}: {audio_ms:.0f} ms of audio for "
                                         f"{video_ms:.0f} ms of video")
        path = align
        if last > video_ms + FRAME_MS:
            raise _Broken("align_bad", f"{align}: words end at {last:.0f} ms, after the "
                                       f"{video_ms:.0f} ms video (units are 1/25000 s)")
        t3 = time.process_time()
        sig = sig[: round(video_ms * rate / 1000)]
        hi, t_hi = mfcc39(sig, rate, HI_HOP_MS)
        lo, t_lo = mfcc39(sig, rate, LO_HOP_MS)
        t4 = time.process_time()
    except _Broken as e:
        return {"ok": False, "kind": e.kind, "path": str(path), "why": e.why}
    except Exception as e:  # noqa: BLE001 -- one odd file must not end a 33,000-file run
        return {"ok": False, "kind": "error", "path": str(path),
                "why": f"{path}: {type(e).__name__}: {e}"}
    w = np.asarray(words, dtype=np.float64).reshape(-1, 3)
    rows = {
        "video": {"frame": frames, "t": (np.arange(n) * FRAME_MS).astype(np.float32)},
        "mfcc_hi": {"feat": hi, "t": t_hi},
        "mfcc_lo": {"feat": lo, "t": t_lo},
        "words": {"word": w[:, 0].astype(np.uint8), "start": w[:, 1].astype(np.float32),
                  "end": w[:, 2].astype(np.float32)},
    }
    return {"ok": True, "rows": rows, "no_face": int(no_face), "frames": n,
            "mfcc_frames": len(hi) + len(lo), "video_s": t2 - t1,
            "audio_s": (t1 - t0) + (t4 - t3), "rate": rate}


def _process_task(task: tuple) -> dict:
    return process_utterance(*task)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def split_ids(ids: list[str], speaker: int, seed: int) -> set[str]:
    """The test ids of one speaker's sentences (seeded, ~10%, at least 1 when there are 2+)."""
    ids = sorted(ids)
    k = round(TEST_FRACTION * len(ids))
    if len(ids) >= 2:
        k = max(1, k)
    perm = np.random.default_rng([seed, speaker]).permutation(len(ids))
    return {ids[i] for i in perm[:k]}


# --- download / placement -----------------------------------------------------------------

_SPK_DIR = re.compile(r"^s(\d{1,2})(?:_\w+)?$", re.IGNORECASE)
_SPK_ARCHIVE = re.compile(r"^s(\d{1,2})(?=[._])", re.IGNORECASE)


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


# --- preprocessing ------------------------------------------------------------------------

def _inventory(base: Path, speakers: list[int],
               bad: list[str] | None = None) -> list[tuple[str, int, tuple]]:
    """[(record name, speaker, task)] for every sentence id of the speakers, sorted."""
    out = []
    for s in speakers:
        d = base / _spk(s)
        ids = {}
        for kind in KINDS.values():
            sub = d / kind
            if sub.is_dir():
                for p in sub.iterdir():
                    if p.suffix.lower() != EXT[kind] or p.name.startswith("."):
                        continue
                    if why := name_problem(p.name):  # a store holds one name a line
                        if bad is not None:
                            bad.append(f"{shown(str(p))}: {why}, skipped")
                        continue
                    ids.setdefault(p.stem, {})[kind] = p
        for sid in sorted(ids):
            k = ids[sid]
            out.append((f"{_spk(s)}/{sid}", s, (k.get("video"), k.get("audio"), k.get("align"),
                                                 sid)))
    return out


def _fingerprint(tasks: list) -> str:
    """A hash of every input file's name, size and mtime: the stores are rebuilt when it
    changes (files added, removed or replaced)."""
    import hashlib

    h = hashlib.sha1()
    for name, _, task in tasks:
        for p in task[:3]:
            if p is not None:
                st = p.stat()
                h.update(f"{name}:{p.suffix}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _speakers_in(base: Path) -> list[int]:
    out = []
    for p in base.iterdir() if base.is_dir() else ():
        m = re.fullmatch(r"s(\d{1,2})", p.name)
        if m and p.is_dir() and int(m.group(1)) in ALL_SPEAKERS:
            out.append(int(m.group(1)))
    return sorted(out)


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
    from .store import Store, StoreWriter

    base = Path(root) / folder
    present = _speakers_in(base)
    if not present:
        raise FileNotFoundError(
            f"GRID: no speaker folders (sN/) in {base}. Run `plstm download grid` "
            f"(or `--from DIR`) first.")
    speakers = present if speakers is None else resolve_speakers(speakers, echo)
    absent = [s for s in speakers if s not in present]
    if absent:
        raise FileNotFoundError(f"GRID: speakers {absent} are not in {base} (have {present}); "
                                f"run `plstm download grid --speakers ...` first")
    cache = base / "cache"
    bad_names: list[str] = []
    tasks = _inventory(base, speakers, bad_names)
    for b in bad_names:
        echo(f"GRID: {b}")
    key = {"speakers": speakers, "seed": seed, "settings": SETTINGS, "folder": folder,
           "files": _fingerprint(tasks)}
    if Store.exists(cache / "train") and Store.exists(cache / "test"):
        info = Store(cache / "train").info
        if info.get("key") == json.loads(json.dumps(key)):
            echo(f"GRID: stores in {cache} are up to date; nothing to do")
            return {k: v for k, v in info.items() if k != "split"}
        echo(f"GRID: stores in {cache} were made from other files, speakers, seed or settings: "
             f"rebuilding")
    by_spk = {}
    for name, s, _ in tasks:
        by_spk.setdefault(s, []).append(name.split("/", 1)[1])
    test_ids = {s: split_ids(ids, s, seed) for s, ids in by_spk.items()}
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    layout = base / "layout.json"
    summary = {
        "dataset": folder, "folder": str(base), "key": key,
        "synthetic": (base / "SYNTHETIC.txt").is_file(),
        "settings": SETTINGS, "speakers": speakers, "seed": seed,
        "vocabulary": list(VOCABULARY),
        "layout": json.loads(layout.read_text()) if layout.is_file() else {},
    }
    counts = {"sentences": len(tasks), "good": 0, "broken": 0, "train": 0, "test": 0,
              "video_frames": 0, "no_face_frames": 0, "files_with_no_face_frames": 0,
              "mfcc_frames": 0, "words": 0, "frames_per_video": {}}
    broken: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    rates: dict[str, int] = {}
    short_by_spk: dict[int, int] = {}
    video_s = audio_s = 0.0
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=N_FRAMES * len(tasks), unit="frame", desc=f"preprocess {folder}",
               disable=not progress, smoothing=0.1)
    cache.mkdir(parents=True, exist_ok=True)
    with StoreWriter(cache / "train", STORE_TABLES, STORE_RECORDS) as wtr, \
            StoreWriter(cache / "test", STORE_TABLES, STORE_RECORDS) as wte:
        for (name, s, _), r in zip(tasks, _run(tasks, workers, echo), strict=True):
            if not r["ok"]:
                counts["broken"] += 1
                broken.setdefault(r["kind"], []).append(r["path"])
                why[r["path"]] = r["why"]
                if r["kind"] == "audio_short":
                    short_by_spk[s] = short_by_spk.get(s, 0) + 1
                bar.update(N_FRAMES)
                bar.set_postfix(broken=counts["broken"])
                continue
            split = "test" if name.split("/", 1)[1] in test_ids[s] else "train"
            (wte if split == "test" else wtr).add(
                name, records={"speaker": s, "no_face": min(r["no_face"], 65535)}, **r["rows"])
            counts["good"] += 1
            counts[split] += 1
            counts["video_frames"] += r["frames"]
            per = counts["frames_per_video"]  # how many kept videos have each frame count
            per[str(r["frames"])] = per.get(str(r["frames"]), 0) + 1
            counts["no_face_frames"] += r["no_face"]
            counts["files_with_no_face_frames"] += r["no_face"] > 0
            counts["mfcc_frames"] += r["mfcc_frames"]
            counts["words"] += len(r["rows"]["words"]["word"])
            rates[str(r["rate"])] = rates.get(str(r["rate"]), 0) + 1
            video_s += r["video_s"]
            audio_s += r["audio_s"]
            bar.update(r["frames"])
        bar.close()
        wall = time.perf_counter() - t0
        notes = []
        for s, k in sorted(short_by_spk.items()):
            if k > len(by_spk.get(s, [])) / 2:
                notes.append(f"s{s}: {k} of {len(by_spk[s])} wavs are shorter than their video: "
                             f"end-pointed audio (silence cut, as reported of the Zenodo "
                             f"audio_25k and the site's 25 kHz sN.tar)? Its time base does not "
                             f"match the video and the alignments; use the site's 50 kHz audio")
        summary.update({
            "counts": counts,
            "broken": {k: sorted(v) for k, v in sorted(broken.items())},
            "broken_why": why,
            "audio_rates": rates,
            "notes": notes,
            "throughput": {
                "note": "per CPU-second of the workers: face crop = decode + cascade + crop; "
                        "mfcc = wav read + MFCC at both hops",
                "workers": workers, "wall_s": round(wall, 2),
                "load_avg_before": [round(x, 2) for x in load0],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
                "sentences_per_s": round(len(tasks) / wall, 2) if wall else None,
                "face_crop_frames_per_cpu_s":
                    round(counts["video_frames"] / video_s, 1) if video_s else None,
                "mfcc_frames_per_cpu_s":
                    round(counts["mfcc_frames"] / audio_s, 1) if audio_s else None,
                "video_frames_per_s_wall": round(counts["video_frames"] / wall, 1) if wall
                else None,
            },
        })
        wte.commit({**summary, "split": "test"})
        wtr.commit({**summary, "split": "train"})
    echo(f"GRID: {counts['good']} utterances ({counts['train']} train, {counts['test']} test) "
         f"from {len(speakers)} speakers in {wall:.1f} s with {workers} workers; "
         f"{counts['broken']} broken; {counts['no_face_frames']} frames without a face; "
         "frames per video: " + (", ".join(f"{k}: {v}" for k, v in
                                        sorted(counts["frames_per_video"].items(),
                                               key=lambda kv: -int(kv[0]))) or "none"))
    for kind, paths in summary["broken"].items():
        echo(f"GRID: broken ({kind}, {len(paths)}): " + ", ".join(paths[:20])
             + (" ..." if len(paths) > 20 else ""))
    for n in notes:
        echo("GRID: note: " + n)
    return summary


def _run(tasks: list, workers: int, echo=print):
    """Results of process_utterance over the tasks, in order: a pool of spawned processes when
    workers > 1 (OpenCV's thread pool does not survive a fork: opencv/opencv#5150), else this
    process. If the pool dies (a worker killed, e.g. out of memory, or a caller without an
    ``if __name__ == "__main__":`` guard), the remaining utterances run here."""
    args = [t for _, _, t in tasks]
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


# The registry's functions for ``grid`` and ``synthetic-grid`` (see data/registry.py); their
# folders under the data root are declared there.

def _folder(name: str) -> str:
    from .registry import REGISTRY
    return REGISTRY[name].folder


def download_real(root: Path, from_dir: Path | None, progress: bool, echo,
                  speakers: str = "") -> str:
    """``plstm download grid``: the chosen speakers, from the web or ``from_dir``."""
    from . import parse_speakers

    where = download_grid(root, parse_speakers(speakers), from_dir, progress=progress,
                          echo=echo, folder=_folder("grid"))
    return f"grid is in {where}; next: plstm preprocess grid"


def download_synthetic(root: Path, from_dir: Path | None, progress: bool, echo,
                       speakers: str = "") -> str:
    """``plstm download synthetic-grid``: generated offline (3 speakers, 100 sentences), or
    placed from ``from_dir`` like the real corpus."""
    from . import parse_speakers

    name, folder = "synthetic-grid", _folder("synthetic-grid")
    if from_dir is not None:
        where = download_grid(root, parse_speakers(speakers), from_dir, progress=progress,
                              echo=echo, folder=folder)
        return f"{name} is in {where}; next: plstm preprocess {name}"
    from .grid_synth import generate_synthetic_grid

    tmp = root / ".synthetic-grid-src"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        generate_synthetic_grid(tmp, speakers=3, sentences=100)
        echo("synthetic-grid: generated SYNTHETIC utterances (not GRID)")
        where = download_grid(root, None, tmp, progress=progress, echo=echo, folder=folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"{name} is in {where}; next: plstm preprocess {name}"


def prepare_real(root: Path, progress: bool, echo, speakers: str = "") -> dict:
    """``plstm preprocess grid``."""
    from . import parse_speakers

    return preprocess_grid(root, parse_speakers(speakers), progress=progress, echo=echo,
                           folder=_folder("grid"))


def prepare_synthetic(root: Path, progress: bool, echo, speakers: str = "") -> dict:
    """``plstm preprocess synthetic-grid``."""
    from . import parse_speakers

    return preprocess_grid(root, parse_speakers(speakers), progress=progress, echo=echo,
                           folder=_folder("synthetic-grid"))


def synthetic_stores(root: Path) -> list[Path]:
    """The caches the first run on ``synthetic-grid`` generates."""
    return [root / _folder("synthetic-grid") / "cache" / s for s in ("train", "test")]


__all__ = [
    "SETTINGS",
    "STORE_RECORDS",
    "STORE_TABLES",
    "VOCABULARY",
    "WORD_INDEX",
    "ArchiveError",
    "align_words",
    "download_grid",
    "match_alignment_folders",
    "mfcc39",
    "parse_align",
    "preprocess_grid",
    "sentence_words",
    "speaker_urls",
]

