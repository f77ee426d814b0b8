"""A SYNTHETIC GRID-format corpus: drawn faces whose mouths move per word, tones per word.

For users without the corpus: it has GRID's grammar, file formats and layout (the corpus site's
archives unpacked: ``video/sN/<id>.mpg``, ``audio/sN/<id>.wav``, ``align/sN/align/<id>.align``),
so it goes through the same :func:`~plstm_repro.data.grid.download_grid` (``--from``) and
:func:`~plstm_repro.data.grid.preprocess_grid` as the real one, and the models can be seen to
learn. It is not speech and not a face: results on it are labelled synthetic everywhere
(``SYNTHETIC.txt`` travels with the files; the preprocessing summary says ``synthetic: true``)
and never stand for the paper's Fig. 6c.

The signal, learnable from either stream alone:

- audio (50 kHz, 16-bit PCM, 3 s): during each word, three tones at the word's own frequencies
  (one per band: 250-900, 900-2500, 2500-5000 Hz; a fixed table, the same for every corpus),
  scaled by the speaker's pitch factor (0.85-1.15), under a Hann envelope and a word-specific
  amplitude flutter (4-12 Hz); low noise throughout.
- video (25 fps MPEG-1, 360x288, 75 frames): a drawn frontal face (OpenCV's Haar cascade finds
  it) whose mouth, during each word, opens and closes ``cycles`` times to the word's own height,
  at the word's own width, with or without teeth (4 x 4 x 2 x 2 = 64 mouth motions, 51 used);
  closed and neutral between words. Speakers differ in face position, size, skin and
  background; the head jitters by a few pixels.
- timing: 0.3-0.7 s of silence, six words of 0.22-0.30 s with occasional short pauses
  (``sp``), silence to 74,500 units (2.98 s), in 1/25,000 s as GRID's alignments, on a 10 ms
  grid.
"""

from __future__ import annotations

import contextlib
import os
import sys
import wave
from pathlib import Path

import numpy as np

from ...errors import DataError
from .corpus import ALIGN_UNITS_PER_S, DIGITS, GRAMMAR, VOCABULARY, WORD_INDEX

RATE = 50_000
W, H, FPS, N_FRAMES = 360, 288, 25, 75
SECONDS = N_FRAMES / FPS
MARKER = "SYNTHETIC.txt"
END_UNITS = 74_500  # where every GRID .align ends (2.98 s)
GRID_STEP = ALIGN_UNITS_PER_S // 100  # times on a 10 ms grid, as GRID's alignments


def _word_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed per-word tables (independent of the corpus seed): tone frequencies [51, 3] Hz,
    flutter rate [51] Hz, mouth motion [51, 4] = (width level, height level, cycles, teeth)."""
    rng = np.random.default_rng(20160512)
    bands = ((250, 900), (900, 2500), (2500, 5000))
    freqs = np.stack([np.exp(rng.uniform(np.log(a), np.log(b), len(VOCABULARY)))
                      for a, b in bands], axis=1)
    flutter = rng.uniform(4, 12, len(VOCABULARY))
    combos = np.array([(w, h, c, t) for w in range(4) for h in range(4) for c in (1, 2)
                       for t in (0, 1)])
    mouth = combos[rng.permutation(len(combos))[: len(VOCABULARY)]]
    return freqs, flutter, mouth


def _sentence_id(words: list[str]) -> str:
    d = DIGITS.index(words[4])
    return "".join([words[0][0], words[1][0], words[2][0], words[3], "z" if d == 0 else str(d),
                    words[5][0]])


def _speaker_numbers(n: int) -> list[int]:
    if not 1 <= n <= 33:
        raise DataError(f"synthetic GRID: speakers must be 1..33, got {n}")
    return [s for s in range(1, 35) if s != 21][:n]


def _draw(traits: dict, jitter: tuple[int, int], open_: float, width: float,
          teeth: bool, rng: np.random.Generator) -> np.ndarray:
    import cv2

    cx, cy = traits["cx"] + jitter[0], traits["cy"] + jitter[1]
    s, skin = traits["size"], traits["skin"]
    f = np.full((H, W), traits["bg"], np.uint8)

    def ax(v: float) -> int:
        return max(1, round(v * s))

    cv2.ellipse(f, (cx, cy), (ax(0.42), ax(0.55)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(f, (cx, cy - ax(0.5)), (ax(0.44), ax(0.2)), 0, 180, 360, 40, -1, cv2.LINE_AA)
    for dx in (-1, 1):
        ex = cx + dx * ax(0.17)
        cv2.ellipse(f, (ex, cy - ax(0.1)), (ax(0.09), ax(0.045)), 0, 0, 360, 30, -1,
                    cv2.LINE_AA)
        cv2.ellipse(f, (ex, cy - ax(0.2)), (ax(0.11), ax(0.03)), 0, 180, 360, 50, ax(0.03),
                    cv2.LINE_AA)
    cv2.line(f, (cx, cy - ax(0.05)), (cx - ax(0.04), cy + ax(0.12)), skin - 40, ax(0.02))
    mouth = (cx, cy + ax(0.28))
    cv2.ellipse(f, mouth, (ax(width / 2), ax(0.02 + open_)), 0, 0, 360, 45, -1, cv2.LINE_AA)
    if teeth and open_ > 0.03:
        cv2.rectangle(f, (mouth[0] - ax(width / 3), mouth[1] - ax(0.02 + open_)),
                      (mouth[0] + ax(width / 3), mouth[1] - ax(0.02 + open_) + ax(0.025)),
                      235, -1)
    noise = rng.integers(-3, 4, f.shape, dtype=np.int16)
    g = np.clip(f.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


def _timing(words: list[str], rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """[(start, end, word or sil/sp)] in 1/25,000 s: 0.3-0.7 s silence, words of 0.22-0.30 s,
    a 30-60 ms pause after a word with probability 0.3, silence to END_UNITS (at most 2.8 s
    of speech, so it always fits)."""
    def units(seconds: float) -> int:
        return round(seconds * 100) * GRID_STEP

    t = units(rng.uniform(0.3, 0.7))
    segs = [(0, t, "sil")]
    for i, w in enumerate(words):
        d = units(rng.uniform(0.22, 0.30))
        segs.append((t, t + d, w))
        t += d
        if i < 5 and rng.random() < 0.3:
            gap = int(rng.integers(3, 7)) * GRID_STEP
            segs.append((t, t + gap, "sp"))
            t += gap
    segs.append((t, END_UNITS, "sil"))
    return segs


def _sentence(rng: np.random.Generator) -> list[str]:
    return [g[rng.integers(len(g))] for g in GRAMMAR]


def generate_synthetic_grid(out: Path, speakers: int = 2, sentences: int = 50,
                            seed: int = 0) -> Path:
    """Write a SYNTHETIC corpus in the corpus site's unpacked layout under ``out``.

    Args:
        out: folder to write (``video/``, ``audio/``, ``align/``, ``SYNTHETIC.txt``).
        speakers: how many (numbered 1, 2, ... skipping 21 as GRID has no video for it).
        sentences: per speaker (distinct sentences of the grammar).
        seed: everything is drawn from it; the same seed writes the same corpus, and a
            smaller ``sentences`` writes the first sentences of a larger one, byte for byte.

    Returns:
        ``out``.
    """
    import cv2

    out = Path(out)
    if not 1 <= sentences <= 1000:
        raise DataError(f"synthetic GRID: sentences must be 1..1000, got {sentences}")
    freqs, flutter, mouth = _word_tables()
    widths = np.array([0.26, 0.36, 0.46, 0.56])
    heights = np.array([0.03, 0.065, 0.10, 0.135])
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(
        "SYNTHETIC GRID-format corpus written by plstm_repro.data.grid.synth "
        f"(speakers={speakers}, sentences={sentences}, seed={seed}).\n"
        "Drawn faces and tones, not the GRID corpus: results on it are synthetic.\n")
    for spk in _speaker_numbers(speakers):
        rng = np.random.default_rng([seed, spk])
        traits = {"cx": int(rng.integers(150, 211)), "cy": int(rng.integers(130, 156)),
                  "size": int(rng.integers(160, 201)), "skin": int(rng.integers(150, 211)),
                  "bg": int(rng.integers(40, 101)), "pitch": float(rng.uniform(0.85, 1.15))}
        ids: dict[str, list[str]] = {}
        while len(ids) < sentences:
            words = _sentence(rng)
            ids.setdefault(_sentence_id(words), words)
        for i, (sid, words) in enumerate(ids.items()):
            rng = np.random.default_rng([seed, spk, 1 + i])  # sentence i: whatever comes after
            segs = _timing(words, rng)
            _write_align(out / "align" / f"s{spk}" / "align" / f"{sid}.align", segs)
            _write_wav(out / "audio" / f"s{spk}" / f"{sid}.wav",
                       _audio(segs, traits, freqs, flutter, rng))
            _write_video(out / "video" / f"s{spk}" / f"{sid}.mpg", segs, traits, mouth,
                         widths, heights, rng, cv2)
    return out


def _audio(segs, traits, freqs, flutter, rng) -> np.ndarray:
    n = round(SECONDS * RATE)
    x = 0.004 * rng.standard_normal(n)
    for a, b, w in segs:
        if w in ("sil", "sp"):
            continue
        i0 = a * RATE // ALIGN_UNITS_PER_S
        i1 = b * RATE // ALIGN_UNITS_PER_S
        t = np.arange(i1 - i0) / RATE
        k = WORD_INDEX[w]
        tone = sum(np.sin(2 * np.pi * f * traits["pitch"] * t + rng.uniform(0, 2 * np.pi)) / (j + 1)
                   for j, f in enumerate(freqs[k]))
        env = np.hanning(len(t)) * (0.75 + 0.25 * np.sin(2 * np.pi * flutter[k] * t))
        x[i0:i1] += 0.25 * env * tone
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def _write_video(path, segs, traits, mouth, widths, heights, rng, cv2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.mpg")
    with _fd2_silenced():  # FFmpeg warns once per file that MPEG-PS has no tag for PIM1
        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"PIM1"), FPS, (W, H))
    if not vw.isOpened():
        raise RuntimeError("OpenCV cannot write MPEG-1 video (its FFmpeg backend is missing)")
    units_per_frame = ALIGN_UNITS_PER_S // FPS
    for k in range(N_FRAMES):
        u = k * units_per_frame
        open_, width, teeth = 0.0, 0.40, False
        for a, b, w in segs:
            if a <= u < b and w not in ("sil", "sp"):
                wl, hl, cycles, th = mouth[WORD_INDEX[w]]
                phase = (u - a) / (b - a)
                open_ = heights[hl] * np.sin(np.pi * cycles * phase) ** 2
                width, teeth = widths[wl], bool(th)
        jitter = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
        vw.write(_draw(traits, jitter, float(open_), float(width), teeth, rng))
    vw.release()
    tmp.replace(path)


@contextlib.contextmanager
def _fd2_silenced():
    """Standard error closed at the file-descriptor level (OpenCV's FFmpeg backend prints with
    C's fprintf, past Python's sys.stderr and OpenCV's log level)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _write_wav(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.astype("<i2").tobytes())
    tmp.replace(path)


def _write_align(path: Path, segs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a} {b} {w}\n" for a, b, w in segs))
