"""Splitting a grid over machines (``--shard i/N``) and the cores of one (``--jobs K``).

``--shard i/N`` keeps every N-th grid point, starting at the i-th: N machines running the N
shards against one tracking server complete the grid between them. ``--jobs K`` trains K grid
points at once on this machine, each in its own process with ``cores // K`` torch threads.
"""

from __future__ import annotations

import os

from ..errors import UsageError


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 1 <= i <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected i/N such as 2/4, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise UsageError(f"--shard: expected 1 <= i <= N, got {text!r}")
    return i, n


def select_shard(plan: list, shard: tuple[int, int]) -> list:
    """Every N-th point of ``plan``, starting at the i-th (1-based): disjoint, covering."""
    i, n = shard
    return [p for k, p in enumerate(plan) if k % n == i - 1]


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))
