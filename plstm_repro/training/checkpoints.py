"""Checkpoints: a run's training state written atomically, read back as plain data only."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import CheckpointError


def save_checkpoint(path: Path, **payload) -> Path:
    """Write to a temp name, then rename: a crash never leaves a partial file looking complete.

    Serialised in memory first (a checkpoint is a few MB), so that a full or failing disk is a
    plain OSError naming the path and the cause (torch's writer says ``basic_ios::clear``), and
    the temp file is removed; temp files of killed processes are removed on the way."""
    import io

    from ..errors import EnvironmentProblem
    from ..stale import remove_stale

    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    buf = io.BytesIO()
    torch.save(payload, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path.parent)
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EnvironmentProblem(f"checkpoint: cannot write {path}: {e.strerror or e} (the "
                                 f"previous checkpoint, if any, is kept)") from None
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
        found = re.search(r"(?:Unsupported global: |unsupported )GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"checkpoint: {path} was refused: it needs {found.group(1)}, and a plstm "
                "checkpoint holds only tensors, numbers, strings, lists and dicts; a file that "
                "holds code is never loaded by plstm (it is not one of its checkpoints)"
            ) from None
        why = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
        # torch's own advice (load it with weights_only=False) is never the reason to show
        reasons = [c.strip() for c in text.split("\n\n") if c.strip()
                   and "weights_only" not in c and "Weights only" not in c]
        first = why.group(1) if why else (reasons[0].splitlines()[0] if reasons
                                          else type(e).__name__)
        raise CheckpointError(f"checkpoint: {path} is not a readable plstm checkpoint "
                              f"({first.strip()})") from None
    if not isinstance(ck, dict) or "config" not in ck or "model" not in ck:
        raise CheckpointError(f"checkpoint: {path} lacks the config and model state it should "
                              "hold")
    return ck


def restore_state(target, state, path: Path, what: str = "model") -> None:
    """``target.load_state_dict(state)``, a mismatch (another model's checkpoint, other sizes)
    being one CheckpointError line naming the file, not torch's listing of every key."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
        if len(detail) > 160:
            detail = detail[:157] + "..."
        raise CheckpointError(f"checkpoint: {path} does not fit this {what} (another model's "
                              f"checkpoint, or other sizes): {detail}") from None
