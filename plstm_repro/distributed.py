"""Which device a process computes on, and torch.distributed set up for it.

- :func:`resolve_device`: ``--device`` (cpu | cuda | cuda:N | auto) to a ``torch.device``;
  under ``torchrun`` a plain "cuda" means this process's own GPU, ``cuda:$LOCAL_RANK``. Asking
  for CUDA where none is visible is one clear error, not a traceback deep in a kernel.
- :func:`init_distributed`: the process group from torchrun's environment (RANK, WORLD_SIZE,
  MASTER_ADDR, MASTER_PORT), NCCL for CUDA devices and gloo for the CPU.
- :func:`reduce_values`: sums scalars over the ranks on the group's device (NCCL reduces only
  device tensors; it supports float64, so the sums stay exact as the CPU path's).

Nothing here runs at import time; torch.distributed is imported by the functions that use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from .errors import EnvironmentProblem, UsageError

NO_CUDA = "no CUDA device is visible"


def local_rank(env: Mapping[str, str] | None = None) -> int | None:
    """torchrun's LOCAL_RANK (this process's index on its machine), None outside torchrun."""
    env = os.environ if env is None else env
    value = env.get("LOCAL_RANK")
    if value is None:
        return None
    if not value.isdigit():
        raise UsageError(f"LOCAL_RANK: expected a non-negative integer, got {value!r}")
    return int(value)


def resolve_device(name: str | None = "auto", env: Mapping[str, str] | None = None
                   ) -> torch.device:
    """The device for ``--device`` ``name``: "cpu", "cuda", "cuda:N" or "auto" (CUDA where
    visible, else the CPU). Under torchrun "cuda"/"auto" is ``cuda:LOCAL_RANK``. Raises
    :class:`EnvironmentProblem` ("no CUDA device is visible") when CUDA is asked for and absent,
    ValueError for a name that is not a device."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise UsageError(f"--device: expected cpu, cuda, cuda:N or auto, got {name!r}")
    if not torch.cuda.is_available():
        raise EnvironmentProblem(f"--device {name}: {NO_CUDA}")
    count = torch.cuda.device_count()
    rank = local_rank(env)
    index = int(name[5:]) if ":" in name else (rank or 0)
    if index >= count:
        why = f"LOCAL_RANK {rank}" if ":" not in name and rank is not None else name
        raise EnvironmentProblem(f"--device {name}: {why} asks for GPU {index}, but "
                                 f"{count} CUDA device(s) are visible")
    return torch.device("cuda", index)


def backend_for(device: torch.device) -> str:
    """The collective backend for tensors on ``device``: NCCL for CUDA, gloo for the CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_distributed(device: torch.device, env: Mapping[str, str] | None = None):
    """Initialise the default process group when launched by torchrun (WORLD_SIZE > 1) and not
    yet done; returns (dist, rank, world) or (None, 0, 1) for a single process. A CUDA
    ``device`` becomes the process's current device first (NCCL's requirement)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None, 0, 1
    import torch.distributed as dist

    device = torch.device(device)
    if not dist.is_initialized():
        backend = backend_for(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            # NCCL for the device's tensors, gloo for a CPU tensor (a run with --device cpu)
            backend = f"cpu:gloo,cuda:{backend}"
        dist.init_process_group(backend, init_method="env://",
                                rank=int(env["RANK"]), world_size=world)
    return dist, dist.get_rank(), dist.get_world_size()


def reduce_values(dist, *vals: float, device: torch.device | str = "cpu") -> tuple[float, ...]:
    """Sums of the scalars ``vals`` over all ranks (``dist`` None: the values themselves).
    Reduced as one float64 tensor on ``device``: the group's device (NCCL reduces CUDA tensors
    only; a CPU tensor there fails)."""
    if dist is None:
        return tuple(vals)
    t = torch.tensor(vals, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return tuple(t.tolist())
