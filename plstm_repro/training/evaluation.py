"""Evaluation: a model on a test split (loss, accuracy or MSE, update counts), under the
artifact's test-time conditions, or rebuilt from a checkpoint alone."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig, apply_overrides, from_dict
from ..data import SeqData, load_split
from ..distributed import resolve_device
from ..errors import CheckpointError, ConfigError
from .build import make_model
from .checkpoints import load_checkpoint, restore_state
from .steps import loss_and_hits


@torch.no_grad()
def evaluate(model: nn.Module, data: SeqData, batch_size: int = 256,
             device: str = "cpu") -> dict[str, float]:
    """Loss and accuracy (percent) or MSE. For recurrent models, the updates per neuron per
    sequence (Table 1's last row, first layer): for phased models the steps with k > 0 at leak
    0, counted as the sparse kernel and ``count_updates`` count them, with the mean time-gate
    openness; for the others every valid step."""
    was_training = model.training
    model.eval()
    total, hits, n, preds = 0.0, 0.0, 0, 0
    stats: dict[str, float] = {}
    order = torch.argsort(data.lengths)  # similar lengths together: less padding
    for idx in order.split(batch_size):
        b = data.batch(idx).to(device)
        out = model(*b.inputs)
        loss, h, npred = loss_and_hits(out, b)
        total += float(loss) * npred
        hits += h
        n += len(idx)
        preds += npred
        if hasattr(model, "update_stats"):  # sums over the batch
            for k, v in model.update_stats(*b.inputs).items():
                stats[k] = stats.get(k, 0.0) + v
    model.train(was_training)
    res = {"test_loss": total / preds}
    if data.task == "classification":
        res["test_acc"] = 100.0 * hits / preds
    else:
        res["test_mse"] = total / preds
    res.update({k: v / (stats["steps"] if k == "gate_openness" else n)
                for k, v in stats.items() if k != "steps"})
    return res


EVAL_KEYS = ("train.eval_batch_size", "train.device")


def condition_config(cfg: RunConfig, overrides: list[str] | dict) -> RunConfig:
    """``cfg`` under a test-time condition: only ``data.*`` (and how evaluation runs:
    ``train.eval_batch_size``, ``train.device``) may change; the model stays as trained."""
    keys = overrides.keys() if isinstance(overrides, dict) else [
        o.split("=", 1)[0].strip() for o in overrides]
    bad = [k for k in keys if not (k.startswith("data.") or k in EVAL_KEYS)]
    if bad:
        raise ConfigError(f"a test-time condition may only change data.* (and "
                         f"{', '.join(EVAL_KEYS)}), got {', '.join(bad)}")
    return apply_overrides(cfg, overrides)


def evaluate_checkpoint(path: Path, overrides: list[str] | dict | None = None,
                        seed: int | None = None) -> tuple[RunConfig, dict[str, float]]:
    """Rebuild the model from a checkpoint alone and evaluate it on the test split of its
    dataset, possibly under another condition (``overrides`` of ``data.*``)."""
    ck = load_checkpoint(path)
    try:
        cfg = from_dict(ck["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint: {path} holds a config this plstm cannot read "
                              f"({e})") from None
    if overrides:
        cfg = condition_config(cfg, overrides)
    test_set = load_split(cfg.data, "test", cfg.seed if seed is None else seed)
    model = make_model(cfg, test_set.input_size, test_set.num_outputs, test_set)
    restore_state(model, ck["model"], path)
    device = resolve_device(cfg.train.device)  # where this evaluation runs, not the training
    res = evaluate(model.to(device), test_set, cfg.train.eval_batch_size, device)
    if not math.isfinite(res["test_loss"]):
        raise RuntimeError(f"evaluation of {path} gave a non-finite loss")
    return cfg, res
