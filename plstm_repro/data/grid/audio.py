"""Audio features: PCM wavs read into [-1, 1) and 39-d MFCCs of whole windows, stamped at the end
of each window (see the package docstring)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import DataError

WIN_MS, HI_HOP_MS, LO_HOP_MS = 25, 10, 40
NUMCEP, DELTA_N = 13, 2


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
        raise DataError(f"{path}: unreadable wav ({type(e).__name__}: {e})") from None
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
        raise DataError(f"{path}: unsupported wav sample type {data.dtype}")
    return int(rate), x

