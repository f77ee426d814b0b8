"""Tiny GRID speakers in the corpus's real on-disk formats, made offline for the tests.

Video: MPEG-1 system streams (.mpg) written by OpenCV's FFmpeg backend, 25 fps, 360x288, 75
frames, showing a real face (Grace Hopper's portrait, bundled with matplotlib as sample data)
that OpenCV's Haar cascade finds. Audio: 16-bit PCM mono wav at 50 kHz. Alignments: ``start end
word`` lines in 1/25,000 s, sil at both ends, as the corpus's ``.align`` files.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

W, H, FPS, N = 360, 288, 25, 75
FACE_X, FACE_Y = 70, 10  # where the portrait's top-left corner goes (plus a small drift)


def portrait() -> np.ndarray:
    import cv2
    from matplotlib import cbook

    img = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return cv2.resize(img, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)  # 270x230


def frames(n: int = N, blank: set[int] = frozenset(), seed: int = 0) -> list[np.ndarray]:
    """n BGR frames of the face drifting by a few pixels; frames in ``blank`` show no face."""
    import cv2

    rng = np.random.default_rng(seed)
    face = portrait()
    fh, fw = face.shape[:2]
    # what a face-less frame shows: a smooth texture (so that a reused box is visible)
    tex = cv2.GaussianBlur(np.random.default_rng(99).uniform(0, 255, (H, W)), (0, 0), 6)
    tex = np.clip(90 + (tex - tex.mean()) * 6, 0, 255).astype(np.uint8)
    out = []
    for i in range(n):
        f = np.full((H, W, 3), 90, np.uint8)
        if i in blank:
            f[:] = tex[..., None]
        else:
            dx = int(3 * np.sin(i / 6))
            y0, x0 = FACE_Y, FACE_X + dx
            f[y0:y0 + min(fh, H - y0), x0:x0 + fw] = face[: H - y0]
        f = np.clip(f.astype(np.int16) + rng.integers(-4, 5, f.shape), 0, 255).astype(np.uint8)
        out.append(f)
    return out


def write_mpg(path: Path, frs: list[np.ndarray]) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), FPS, (W, H))
    assert vw.isOpened(), "OpenCV cannot write MPEG-1"
    for f in frs:
        vw.write(f)
    vw.release()
    return path


def speechlike(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic signal with noise, int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    x = 0.3 * env * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 50_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


GRID_WORDS = {"b": "bin", "l": "lay", "p": "place", "s": "set"}


def align_text(sid: str, start: int = 23750, step: int = 5750, end: int = 74500) -> str:
    """A corpus-style .align for sentence ``sid``: sil, six words ``step`` units long (one sp
    after the third), sil to ``end``; times in 1/25,000 s."""
    from plstm_repro.data.grid import sentence_words

    lines, t = [f"0 {start} sil"], start
    for i, w in enumerate(sentence_words(sid)):
        lines.append(f"{t} {t + step} {w}")
        t += step
        if i == 2:
            lines.append(f"{t} {t + 500} sp")
            t += 500
    lines.append(f"{t} {end} sil")
    return "\n".join(lines) + "\n"
