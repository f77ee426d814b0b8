"""The model of a run's config (``make_model``), seeded apart from the global RNG."""

from __future__ import annotations

import torch
from torch import nn

from ..config import RunConfig
from ..data.protocol import Split
from ..errors import ConfigError
from ..models import authors_init, build_model
from ..models.av_fusion import MERGED_TAU


def grid_sizes(hidden: int) -> dict:
    """GRID's layer widths from model.hidden_size, the video layer's: 110 gives the paper's
    110 (video), 150 (audio), 250 and 250 (merged); smaller values scale all four alike."""
    return {"video_hidden": hidden, "audio_hidden": max(1, round(hidden * 150 / 110)),
            "merged": (max(1, round(hidden * 250 / 110)),) * 2}


def make_model(cfg: RunConfig, input_size: int, num_outputs: int,
               data: Split | None = None) -> nn.Module:
    """The model of ``cfg.model``, initialised from the run's seed without touching the global
    RNG state (fork_rng restores it). ``data`` (a split) tells what the inputs are: the model
    its batches need (``arch``), the size of an index feature to embed (``num_indices``), the
    sensor of an event CNN. It reads the model fields ``config_fields`` declares for the model
    (and no other: tests/test_config_fields.py records the reads)."""
    m = cfg.model
    kw: dict = {}
    if data is not None and data.arch == "grid_fusion":  # GRID: the fusion network around the cell
        kw = {"time_scale": m.time_scale}
        if m.name == "phased_lstm":  # the merged layers' time gates
            kw.update(r_on=m.r_on, leak=m.leak, learn_time=m.learn_time,
                      merged_tau=(m.merged1_tau, MERGED_TAU[1]))
        elif m.name == "bn_lstm":
            kw["bn"] = m.bn
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_model("grid_fusion", cell=m.name, num_outputs=num_outputs,
                               audio_features=input_size, clocks=data.clocks,
                               **grid_sizes(m.hidden_size), **kw)
    if m.name == "cnn":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_model("cnn", num_outputs=num_outputs,
                               sensor=data.sensor if data is not None and data.sensor
                               else (34, 34))
    if m.name in ("phased_lstm", "phased_gru"):
        kw = {"r_on": m.r_on, "leak": m.leak, "tau_init": m.tau_init, "tau_dist": m.tau_dist,
              "learn_time": m.learn_time, "learn_r_on": m.learn_r_on, "shift_max": m.shift_max}
        if m.name == "phased_lstm" and m.peephole:  # the Phased GRU has none (config_fields)
            kw["peephole"] = True
    elif m.name in ("lstm", "bn_lstm"):
        kw = {"time_scale": m.time_scale}
        if m.name == "bn_lstm":  # the other models have no batch norm to place
            kw["bn"] = m.bn
    if m.init not in ("torch", "authors"):
        raise ConfigError(f"model.init: expected torch or authors, got {m.init!r}")
    embed = None
    if m.embed_dim > 0:
        num = data.num_indices if data is not None else 0
        if num <= 0:
            raise ConfigError(f"model.embed_dim: {cfg.data.name} has no index feature to embed; "
                             "set model.embed_dim=0")
        embed = (num, m.embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(m.name, input_size=input_size, num_outputs=num_outputs,
                            hidden_size=m.hidden_size, num_layers=m.num_layers,
                            readout=m.readout, embed=embed, head=m.head, **kw)
        return authors_init(model) if m.init == "authors" else model
