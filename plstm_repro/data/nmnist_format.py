"""N-MNIST's recording format (Orchard et al. 2015): 5-byte events, x (8 bits), y (8 bits),
polarity (1 bit), timestamp in us (23 bits); a record with y = 240 is a timestamp-overflow marker
that adds 2^13 us to every later timestamp. Decoding is bounded (a file over
``RECORDING_MAX_BYTES`` is refused before it is read) and linear in time."""

from __future__ import annotations

import numpy as np

from .archives import MB

SENSOR = (34, 34, 2)  # width, height, polarities
OVERFLOW_Y = 240  # y of a timestamp-overflow marker record
# A recording is ~300 ms of a 34x34 sensor: ~4,000 events (20 KB), the largest under ~100 KB.
# A file past 10x that is corrupt or hostile: refused at extraction, skipped before decoding.
RECORDING_MAX_BYTES = 1 * MB

class CorruptRecording(ValueError):
    """A recording that cannot be decoded; the message says why."""


def encode_events(x, y, p, t, overflow_at: int | None = None) -> bytes:
    """Events -> Orchard's 5-byte records (the inverse of tonic's reader).

    With ``overflow_at`` = i, an overflow marker is written before event i and the timestamps
    from event i on are stored 2^13 us lower, so the reader's correction restores them (the
    format's way to count time past 2^23 us; here also a way to test that correction).
    """
    x, y, p, t = (np.asarray(v, dtype=np.int64) for v in (x, y, p, t))
    t = t.copy()
    if overflow_at is not None:
        t[overflow_at:] -= 2 ** 13
    if len(t) and (t.min() < 0 or t.max() >= 2 ** 23):
        raise ValueError("encode_events: timestamps must fit in 23 bits after the overflow shift")
    rec = np.zeros((len(t), 5), dtype=np.uint8)
    rec[:, 0], rec[:, 1] = x, y
    rec[:, 2] = (p.astype(np.uint8) << 7) | ((t >> 16) & 127)
    rec[:, 3], rec[:, 4] = (t >> 8) & 255, t & 255
    if overflow_at is not None:
        marker = np.array([[0, OVERFLOW_Y, 0, 0, 0]], dtype=np.uint8)
        rec = np.concatenate([rec[:overflow_at], marker, rec[overflow_at:]])
    return rec.tobytes()


def read_events(raw: bytes) -> dict[str, np.ndarray]:
    """Orchard's 5-byte records -> {x, y, p, t (int64, us)} with the overflow markers applied
    and dropped: what tonic's ``read_mnist_file`` returns for a valid file, in linear time
    (tonic adds 2^13 to a suffix per marker, quadratic in the markers) and without its uint32
    wrap-around (a sum past 2^32 us stays visible)."""
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5)
    marker = rec[:, 1] == OVERFLOW_Y
    t = ((rec[:, 2].astype(np.int64) & 127) << 16) | (rec[:, 3].astype(np.int64) << 8) \
        | rec[:, 4]
    t += np.cumsum(marker, dtype=np.int64) << 13  # a marker adds 2^13 us to every later event
    keep = ~marker
    return {"x": rec[keep, 0], "y": rec[keep, 1], "p": rec[keep, 2] >> 7, "t": t[keep]}


def decode_recording(raw: bytes, source: str = "") -> dict[str, np.ndarray]:
    """One recording's bytes -> {x, y, p, t} (overflow markers applied, see :func:`read_events`).

    Raises CorruptRecording for an empty file, a file over ``RECORDING_MAX_BYTES``, a size that
    is not a multiple of 5 bytes, events outside the 34x34 sensor, or timestamps past 2^32 us.
    """
    if len(raw) == 0:
        raise CorruptRecording("empty file")
    if len(raw) > RECORDING_MAX_BYTES:
        raise CorruptRecording(too_large(len(raw)))
    if len(raw) % 5:
        raise CorruptRecording(f"{len(raw)} bytes, not a multiple of 5 (5 bytes per event)")
    ev = read_events(raw)
    x, y, p, t = ev["x"], ev["y"], ev["p"], ev["t"]
    if len(t) == 0:
        raise CorruptRecording("no events (only overflow markers)")
    if x.max() >= SENSOR[0] or y.max() >= SENSOR[1]:
        raise CorruptRecording(f"events outside the {SENSOR[0]}x{SENSOR[1]} sensor "
                               f"(x up to {x.max()}, y up to {y.max()})")
    if t.max() >= 2 ** 32:
        raise CorruptRecording(f"timestamps beyond 2^32 us (up to {int(t.max())} us)")
    order = np.argsort(t, kind="stable") if np.any(np.diff(t) < 0) else slice(None)
    return {"x": x[order].astype(np.uint8), "y": y[order].astype(np.uint8),
            "p": p[order].astype(np.uint8), "t": t[order].astype(np.uint32)}


def too_large(size: int) -> str:
    return (f"{size} bytes, over the {RECORDING_MAX_BYTES} bytes a recording can hold "
            f"(the largest N-MNIST recordings are ~100 KB)")


# --- download and placement -----------------------------------------------------------------
