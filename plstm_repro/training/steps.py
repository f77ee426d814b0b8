"""Batches of a split and the loss of a batch, shared by training and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.base import IGNORE


def batches(n: int, size: int, gen: torch.Generator | None, lengths: torch.Tensor | None = None,
            pool: int = 50) -> list[torch.Tensor]:
    """Index batches of a random permutation. With ``lengths`` (bucketing), each pool of
    ``pool`` batches is sorted by length before it is cut, and the batch order is shuffled
    again: batches hold similar lengths, so far fewer padded steps are computed."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    if lengths is None:
        return list(order.split(size))
    groups = []
    for chunk in order.split(size * pool):
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        groups += list(chunk.split(size))
    perm = torch.randperm(len(groups), generator=gen) if gen is not None else range(len(groups))
    return [groups[i] for i in perm]


def loss_and_hits(out: torch.Tensor, data) -> tuple[torch.Tensor, float, int]:
    """Mean loss of a batch and, for classification, the number of correct predictions and of
    predictions. Labels y [B] (one per sequence) or [B, W] (one per word, IGNORE where a
    sequence has fewer words): the loss is then the mean cross-entropy over the words."""
    if data.task == "classification":
        logits, y = out.reshape(-1, out.shape[-1]), data.y.reshape(-1)
        valid = y != IGNORE
        hits = float((logits.argmax(-1)[valid] == y[valid]).sum())
        return F.cross_entropy(logits, y, ignore_index=IGNORE), hits, int(valid.sum())
    return F.mse_loss(out.reshape(data.y.shape), data.y), 0.0, len(data.y)
