"""A run's training state: what a checkpoint holds and what resuming restores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import to_dict
from .checkpoints import restore_state


@dataclass
class TrainState:
    """The model, the optimiser, the batch-order generator, the epochs done (``epoch``) with
    their metrics, the optimiser steps, and where inside the next epoch a checkpoint was cut
    (``partial``: its first batches, the generator at its start, the running sums)."""

    model: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    epoch: int = 0
    step: int = 0
    epochs: list = field(default_factory=list)
    partial: dict | None = None

    def payload(self, cfg, within: dict | None) -> dict:
        return {"config": to_dict(cfg), "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "generator": self.gen.get_state(),
                "epoch": self.epoch, "step": self.step, "epochs": self.epochs,
                "partial": within}

    def restore(self, ck: dict, path: Path) -> None:
        restore_state(self.model, ck["model"], path)
        restore_state(self.opt, ck["optimizer"], path, "optimizer")
        self.gen.set_state(ck["generator"])
        self.epoch, self.step = ck["epoch"], ck["step"]
        self.epochs = list(ck.get("epochs", []))
        self.partial = ck.get("partial")
