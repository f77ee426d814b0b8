"""The 90/10 train/test split of sentences: per speaker, seeded, over every sentence id found, so
that it does not move when a file breaks or another speaker is added."""

from __future__ import annotations

import numpy as np

TEST_FRACTION = 0.1


def split_ids(ids: list[str], speaker: int, seed: int) -> set[str]:
    """The test ids of one speaker's sentences (seeded, ~10%, at least 1 when there are 2+)."""
    ids = sorted(ids)
    k = round(TEST_FRACTION * len(ids))
    if len(ids) >= 2:
        k = max(1, k)
    perm = np.random.default_rng([seed, speaker]).permutation(len(ids))
    return {ids[i] for i in perm[:k]}



def held_out(utterances: list, seed: int) -> set[str]:
    """The record names of the manifest's utterances that go to the test store."""
    by_spk: dict[int, list[str]] = {}
    for u in utterances:
        by_spk.setdefault(u.speaker, []).append(u.sid)
    test = {s: split_ids(ids, s, seed) for s, ids in by_spk.items()}
    return {u.name for u in utterances if u.sid in test[u.speaker]}
