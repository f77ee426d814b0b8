"""Checkpoints: a run's training state written atomically, read back as plain data only."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import CheckpointError


def save_checkpoint(path: Path, **payload) -> Path:
    """Write to a temp name, then rename: a crash never leaves a partial file looking complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict:
    """A checkpoint is data: tensors, numbers, strings, lists and dicts. It is unpickled with
    ``weights_only=True``, so a file that would build any other object (and could run code while
    doing so) is refused with a CheckpointError that says so, as is an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a file we cannot use
        text = str(e)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"checkpoint: {path} was refused: it needs {found.group(1)}, and a plstm "
                "checkpoint holds only tensors, numbers, strings, lists and dicts (loading "
                "anything more could run code from the file)") from None
        why = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
        first = why.group(1) if why else (text.strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"checkpoint: {path} is not a readable plstm checkpoint "
                              f"({first.strip()})") from None
    if not isinstance(ck, dict) or "config" not in ck or "model" not in ck:
        raise CheckpointError(f"checkpoint: {path} lacks the config and model state it should "
                              "hold")
    return ck
