"""Video features: every frame through OpenCV's Haar face cascade, the face cropped to 48x48,
with decoding bounded before a hostile or corrupt video fills memory."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .corpus import N_FRAMES, _Broken

# Decoding bounds: a video longer or larger than these is not a GRID video (corrupt or hostile)
# and is named and skipped before its frames fill memory (1,500 frames at 640x480: 460 MB).
MAX_FRAMES = 2 * N_FRAMES
MAX_FRAME_PIXELS = 1280 * 720  # GRID: 360x288
CROP = 48
DETECT_HEIGHT = 144  # frames are scaled to this many rows for the cascade (GRID: 288 -> 144)
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


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

