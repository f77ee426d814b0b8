"""plstm_repro.distributed: device choice (LOCAL_RANK under torchrun, one clear error without
CUDA), the collective backend per device, and sums reduced over two real (gloo) processes."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from plstm_repro import distributed as D
from plstm_repro.errors import EnvironmentProblem


def fake_gpus(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_cpu_and_auto_without_cuda(monkeypatch):
    fake_gpus(monkeypatch, 0)
    assert D.resolve_device("cpu") == torch.device("cpu")
    assert D.resolve_device("auto", env={"LOCAL_RANK": "1"}) == torch.device("cpu")
    assert D.resolve_device(None) == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA"])
def test_cuda_without_a_gpu_is_one_clear_error(monkeypatch, name):
    fake_gpus(monkeypatch, 0)
    with pytest.raises(EnvironmentProblem, match="no CUDA device is visible") as e:
        D.resolve_device(name)
    assert "\n" not in str(e.value)


def test_local_rank_picks_the_process_gpu(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert D.resolve_device("cuda", env={}) == torch.device("cuda", 0)
    assert D.resolve_device("cuda", env={"LOCAL_RANK": "1"}) == torch.device("cuda", 1)
    assert D.resolve_device("auto", env={"LOCAL_RANK": "1"}) == torch.device("cuda", 1)
    assert D.resolve_device("cuda:0", env={"LOCAL_RANK": "1"}) == torch.device("cuda", 0)
    with pytest.raises(EnvironmentProblem, match="LOCAL_RANK 2 asks for GPU 2.*2 CUDA"):
        D.resolve_device("cuda", env={"LOCAL_RANK": "2"})
    with pytest.raises(EnvironmentProblem, match="cuda:5"):
        D.resolve_device("cuda:5", env={})
    with pytest.raises(ValueError, match="LOCAL_RANK"):
        D.resolve_device("cuda", env={"LOCAL_RANK": "x"})


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "mps:0"])
def test_bad_device_name(bad):
    with pytest.raises(ValueError, match="--device: expected cpu, cuda"):
        D.resolve_device(bad)


def test_backend_per_device_and_single_process():
    assert D.backend_for(torch.device("cuda", 1)) == "nccl"
    assert D.backend_for("cpu") == "gloo"
    assert D.init_distributed(torch.device("cpu"), env={}) == (None, 0, 1)
    assert D.reduce_values(None, 1.5, 2) == (1.5, 2)


def _worker(rank, port, out):
    env = {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    import os

    os.environ.update(env)
    dist, r, world = D.init_distributed(D.resolve_device("cpu", env), env)
    try:
        # summed in float64: float32 would round 1e17 + 1 to 1e17
        out[rank] = D.reduce_values(dist, 1e17 if rank == 0 else 1.0, 0.5 * (rank + 1),
                                    device="cpu") + (r, world)
    finally:
        dist.destroy_process_group()


def test_two_processes_reduce_on_gloo():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(port, out), nprocs=2, join=True)
    assert out[0] == (1e17 + 1.0, 1.5, 0, 2)
    assert out[1] == (1e17 + 1.0, 1.5, 1, 2)
