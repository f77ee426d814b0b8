"""Frequency discrimination task (Neil et al. 2016, sec. 3.1, Fig. 3; superimposed variant Fig. 4a).

Class 1: a sine with period T ~ U(5, 6) ms. Class 0: T ~ U(1, 5) u U(6, 100) ms, drawn uniformly
over the union (each piece in proportion to its length). Random phase ~ U(0, 2 pi), duration
~ U(15, 125) ms, start ~ U(0, 125 - duration) ms. Three sampling conditions:

* ``"standard"``: one sample every 1 ms from the start, ``ceil(duration)`` samples
  (times start + k, k = 0, 1, ... while k < duration);
* ``"highres"``: one sample every 0.1 ms, ``ceil(10 * duration)`` samples (10x as many);
* ``"async"``: as many samples as ``"standard"``, at sorted uniform random times over
  [start, start + duration).

All random draws except the asynchronous sample times are made in the same order whatever the
condition, so one seed gives the same waves (labels, periods, phases, durations, starts) under all
three samplings; only where they are sampled differs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .base import SeqData

SAMPLINGS = ("standard", "highres", "async")
_STEP_MS = {"standard": 1.0, "highres": 0.1, "async": 1.0}

# (low, high) pieces of the period distributions, in ms
CLASS1_T1 = ((5.0, 6.0),)
CLASS0_T1 = ((1.0, 5.0), (6.0, 100.0))
CLASS1_T2 = ((13.0, 15.0),)
CLASS0_T2 = ((1.0, 13.0), (15.0, 100.0))

MAX_TIME_MS = 125.0
DURATION_MS = (15.0, 125.0)


def uniform_union(rng: np.random.Generator, pieces, size: int) -> np.ndarray:
    """Draw ``size`` values uniformly over the union of disjoint intervals ``pieces``.

    A point is drawn uniformly on the total length and mapped into its piece, so each interval
    is hit in proportion to its length (sec. 3.1: T ~ {U(1, 5) u U(6, 100)}).
    """
    lows = np.array([lo for lo, _ in pieces], dtype=np.float64)
    widths = np.array([hi - lo for lo, hi in pieces], dtype=np.float64)
    ends = np.cumsum(widths)
    u = rng.uniform(0.0, ends[-1], size)
    k = np.minimum(np.searchsorted(ends, u, side="right"), len(pieces) - 1)
    return lows[k] + (u - (ends[k] - widths[k]))


def _draw_periods(rng: np.random.Generator, y: np.ndarray, class1, class0) -> np.ndarray:
    """Periods for labels y: drawn from ``class1`` where y == 1, from ``class0`` elsewhere."""
    p1 = uniform_union(rng, class1, len(y))
    p0 = uniform_union(rng, class0, len(y))
    return np.where(y == 1, p1, p0)


def _grid_lengths(duration: np.ndarray, sampling: str) -> np.ndarray:
    """Points start + k * step with k * step < duration (at least one): ceil(duration / step)."""
    scale = round(1.0 / _STEP_MS[sampling])
    return np.maximum(np.ceil(duration * scale - 1e-9), 1).astype(np.int64)


def _sample_times(rng: np.random.Generator, start: np.ndarray, duration: np.ndarray,
                  lengths: np.ndarray, sampling: str) -> tuple[np.ndarray, np.ndarray]:
    """Times [n, T] (0 past each length) and the valid mask: every ``step`` ms from ``start``,
    or (async) sorted uniform times over [start, start + duration), drawn from ``rng``."""
    T = int(lengths.max())
    k = np.arange(T, dtype=np.float64)
    valid = k[None, :] < lengths[:, None]
    if sampling == "async":
        u = rng.uniform(0.0, 1.0, (len(start), T))
        u[~valid] = np.inf
        u.sort(axis=1)
        offsets = np.where(valid, u, 0.0) * duration[:, None]
    else:
        offsets = k[None, :] / round(1.0 / _STEP_MS[sampling])  # exact multiples of 1 or 0.1 ms
    return np.where(valid, start[:, None] + offsets, 0.0), valid


def _mean_of_sines(t, valid, periods, phases):
    """x [n, T] = the mean over the waves of sin(2 pi t / period + phase), 0 past each length."""
    x = np.zeros(t.shape, dtype=np.float64)
    for period, phase in zip(periods, phases, strict=True):
        x += np.sin(2.0 * np.pi * t / period[:, None] + phase[:, None])
    x /= len(periods)
    x[~valid] = 0.0
    return x


def make_sines(n: int, seed: int, sampling: str = "standard", superimposed: bool = False,
               return_periods: bool = False):
    """Frequency discrimination data of sec. 3.1 (Fig. 3) or, with ``superimposed``, Fig. 4a.

    Args:
        n: number of samples; labels are balanced, ``n // 2`` of class 1 and the rest class 0,
            in a seeded random order.
        seed: seed of this call's own ``numpy.random.Generator`` (no global state is touched).
        sampling: ``"standard"`` (every 1 ms), ``"highres"`` (every 0.1 ms) or ``"async"``
            (as many points as standard, at sorted uniform random times).
        superimposed: Fig. 4a's task: x = (sin(2 pi t / T1 + phi1) + sin(2 pi t / T2 + phi2)) / 2,
            class 1 with T1 ~ U(5, 6), T2 ~ U(13, 15), class 0 with T1 ~ U(1, 5) u U(6, 100),
            T2 ~ U(1, 13) u U(15, 100), independent phases.
        return_periods: also return the periods, float64 [n] (or [n, 2] when superimposed).

    Returns:
        ``SeqData`` with x [n, T, 1] float32 (zero past each length), t [n, T] float64 absolute
        times in ms (zero past each length), lengths int64, y int64 in {0, 1}, 2 classes, time unit
        "ms"; or ``(SeqData, periods)`` when ``return_periods``.
    """
    if sampling not in SAMPLINGS:
        raise DataError(f"sampling must be one of {', '.join(map(repr, SAMPLINGS))}; "
                        f"got sampling={sampling!r}")
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)

    y = np.zeros(n, dtype=np.int64)
    y[: n // 2] = 1
    y = rng.permutation(y)
    duration = rng.uniform(*DURATION_MS, n)
    start = rng.uniform(0.0, 1.0, n) * (MAX_TIME_MS - duration)
    periods = [_draw_periods(rng, y, CLASS1_T1, CLASS0_T1)]
    phases = [rng.uniform(0.0, 2.0 * np.pi, n)]
    if superimposed:
        periods.append(_draw_periods(rng, y, CLASS1_T2, CLASS0_T2))
        phases.append(rng.uniform(0.0, 2.0 * np.pi, n))

    lengths = _grid_lengths(duration, sampling)
    t, valid = _sample_times(rng, start, duration, lengths, sampling)
    x = _mean_of_sines(t, valid, periods, phases)
    data = SeqData(
        x=torch.from_numpy(x.astype(np.float32)).unsqueeze(-1),
        t=torch.from_numpy(t),
        lengths=torch.from_numpy(lengths),
        y=torch.from_numpy(y),
        task="classification",
        num_outputs=2,
        time_unit="ms",
    )
    if return_periods:
        p = np.stack(periods, axis=1) if superimposed else periods[0]
        return data, p
    return data


# --- the authors' generator (dannyneil/public_plstm freq_task.py, commit 3abf8de) --------------
# Where their code differs from the text (reference_numbers.md, "Where the authors' code differs"):
# periods log-uniform in [1, 100] ms with the first half of every batch of 32 overwritten by
# U(5, 6) and the label "period in [5, 6]"; phase s ~ U(0, duration) in sin(2 pi t / T - s);
# asynchronous: int(U(15, 125)) points, independent of the duration. Superimposed (Fig. 4a,
# SinWaveComboIterator): asynchronous only, duration U(1, 100) ms within [0, 100], int(U(100,
# 1000)) points, x = sin(t / T1 - s1) + sin(t / T2 - s2): no 2 pi and no / 2, as theirs.
PROTOCOLS = ("text", "authors")
AUTHORS_BATCH = 32  # a_freq_task.sh --batch_size 32: the unit of "first half is class 1"
_AUTHORS = {  # SinWaveIterator.flow / SinWaveComboIterator.flow defaults
    False: {"duration": (15.0, 125.0), "points": (15, 125), "two_pi": True},
    True: {"duration": (1.0, 100.0), "points": (100, 1000), "two_pi": False},
}


def make_sines_authors(n: int, seed: int, sampling: str = "standard",
                       superimposed: bool = False, return_periods: bool = False):
    """The frequency task as the authors' code generates it (see the comment above), same
    output as :func:`make_sines`. Draws are grouped in blocks of 32 as their batches are: in
    each block the first 16 periods (and, superimposed, the first 16 second periods) are the
    special class, the rest log-uniform, so ~52% of samples are class 1. Seeded per call."""
    if sampling not in SAMPLINGS:
        raise DataError(f"sampling must be one of {', '.join(map(repr, SAMPLINGS))}; "
                        f"got sampling={sampling!r}")
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    if superimposed and sampling != "async":
        raise DataError("the authors' superimposed task (Fig. 4a) is asynchronous only; "
                        f"got sampling={sampling!r}")
    spec = _AUTHORS[superimposed]
    rng = np.random.default_rng(seed)
    lo_d, hi_d = spec["duration"]
    num_points = rng.uniform(*spec["points"], n).astype(np.int64)  # int(): 15..124
    duration = rng.uniform(lo_d, hi_d, n)
    start = rng.uniform(0.0, 1.0, n) * (hi_d - duration)
    special = (np.arange(n) % AUTHORS_BATCH) < AUTHORS_BATCH // 2
    ranges = [(CLASS1_T1[0], (1.0, 100.0))]
    if superimposed:
        ranges.append((CLASS1_T2[0], (1.0, 100.0)))
    periods, shifts = [], []
    for (s_lo, s_hi), (lo, hi) in ranges:
        p = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        p[special] = rng.uniform(s_lo, s_hi, int(special.sum()))
        periods.append(p)
        shifts.append(rng.uniform(0.0, 1.0, n) * duration)  # s ~ U(0, duration)
    y = np.ones(n, dtype=np.int64)
    for p, ((s_lo, s_hi), _) in zip(periods, ranges, strict=True):
        y &= (p >= s_lo) & (p <= s_hi)

    # async: their point count, independent of the duration; else np.arange's ceil(duration/step)
    lengths = (np.maximum(num_points, 1) if sampling == "async"
               else _grid_lengths(duration, sampling))
    t, valid = _sample_times(rng, start, duration, lengths, sampling)
    T = t.shape[1]
    w = 2.0 * np.pi if spec["two_pi"] else 1.0
    x = np.zeros((n, T), dtype=np.float64)
    for p, s in zip(periods, shifts, strict=True):
        x += np.sin(w * t / p[:, None] - s[:, None])
    x[~valid] = 0.0
    data = SeqData(x=torch.from_numpy(x.astype(np.float32)).unsqueeze(-1),
                   t=torch.from_numpy(t), lengths=torch.from_numpy(lengths),
                   y=torch.from_numpy(y), task="classification", num_outputs=2, time_unit="ms")
    if return_periods:
        return data, (np.stack(periods, axis=1) if superimposed else periods[0])
    return data


def _load(cfg, n: int, seed: int, superimposed: bool):
    if cfg.protocol not in PROTOCOLS:
        raise DataError(f"data.protocol: expected one of {', '.join(PROTOCOLS)}, got "
                        f"{cfg.protocol!r}")
    gen = make_sines_authors if cfg.protocol == "authors" else make_sines

    def make(key: int):
        return gen(n, key, sampling=cfg.sampling, superimposed=superimposed)
    if cfg.fresh:
        from .base import FreshSplit
        return FreshSplit(make, seed)
    return make(seed)


def load_sines(cfg, split: str, n: int, seed: int):
    """The registry's loader of ``sines`` (one frequency per sequence)."""
    return _load(cfg, n, seed, superimposed=False)


def load_sines2(cfg, split: str, n: int, seed: int):
    """The registry's loader of ``sines2`` (two superimposed frequencies)."""
    return _load(cfg, n, seed, superimposed=True)
