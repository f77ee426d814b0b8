"""Frozen dataclass configs and typed ``--set section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataConfig:
    name: str = "sines"
    n_train: int = 5000
    n_test: int = 500
    sampling: str = "standard"  # sines / sines2: standard | highres | async
    protocol: str = "text"  # sines / sines2: the paper's text or the authors' code's generator
    fresh: bool = False  # sines / sines2: new train and test samples every epoch (authors' code)
    min_len: int = 490  # adding task
    max_len: int = 510
    root: str = "data"  # downloaded datasets
    rho: float = 1.0  # event datasets: probability that an event is kept (sec. 3.3)
    audio: str = "hi"  # GRID: MFCC every 10 ms (hi) or 40 ms (lo)
    modalities: str = "both"  # GRID: both | audio | video (the other stream zeroed)
    modality_dropout: float = 0.0  # GRID training: share of utterances with one stream zeroed
    speakers: str = ""  # GRID: e.g. "1-4,7" (empty: every preprocessed speaker)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "phased_lstm"
    hidden_size: int = 110
    num_layers: int = 1
    readout: str = "last"
    r_on: float = 0.05  # phased models
    leak: float = 1e-3
    tau_init: tuple[float, float] = (0.0, 3.0)  # tau ~ exp(U(a, b)), or U(a, b): tau_dist
    tau_dist: str = "log_uniform"  # log_uniform: tau ~ exp(U(a, b)); uniform: tau ~ U(a, b)
    learn_time: bool = True
    learn_r_on: bool = False
    time_scale: float = 1.0  # LSTM / BN-LSTM: time feature = t * time_scale
    embed_dim: int = 0  # > 0: feature 0 is an index (e.g. a pixel address) into a learned embedding
    shift_max: float = 0.0  # phased: shift ~ U(0, shift_max); 0: shift ~ U(0, tau)
    peephole: bool = False  # phased LSTM: peephole weights (the reference backend only: slow)
    init: str = "torch"  # torch: nn.LSTM's U(+-1/sqrt(H)); authors: lasagne's N(0, 0.1), b_i -0.1
    head: str = "linear"  # linear | leaky_relu (the authors' dense layer before the softmax)
    bn: str = "recurrent"  # bn_lstm: recurrent (Cooijmans et al.) | input (authors' bnlstm.py)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 70
    batch_size: int = 32
    bucket: bool = False  # batches of similar lengths (less padding); the paper's are random
    lr: float = 1e-3  # Adam, default parameters otherwise (paper sec. 3)
    grad_clip: float = 10.0  # authors' code
    log_every: int = 0  # also log training loss/accuracy every N steps (0: per epoch only)
    max_steps: int = 0  # stop after N optimiser steps (0: no limit)
    eval_batch_size: int = 256
    eval_train: bool = False  # also evaluate on the training set each epoch
    device: str = "cpu"


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


SECTIONS = ("data", "model", "train")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (e.g. a checkpoint); unknown keys are errors."""
    kw = {}
    for f in dataclasses.fields(RunConfig):
        if f.name not in d:
            continue
        if f.name in SECTIONS:
            cls = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[f.name]
            sec = dict(d[f.name])
            names = {g.name: g for g in dataclasses.fields(cls)}
            for k, v in sec.items():
                if k not in names:
                    raise ValueError(f"config: unknown key {f.name}.{k}")
                if isinstance(v, list):
                    sec[k] = tuple(v)
            kw[f.name] = cls(**sec)
        else:
            kw[f.name] = d[f.name]
    return RunConfig(**kw)


def flat(cfg: RunConfig) -> dict[str, object]:
    """{'data.name': 'sines', ..., 'seed': 0}: the resolved config as MLflow params."""
    out: dict[str, object] = {}
    for k, v in to_dict(cfg).items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def config_hash(cfg: RunConfig) -> str:
    """Stable hash of the resolved config: runs with the same hash are the same experiment."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def valid_keys() -> list[str]:
    keys = ["seed"]
    for sec in SECTIONS:
        cls = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[sec]
        keys += [f"{sec}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def _field_type(cls, name: str):
    return typing.get_type_hints(cls)[name]


def parse_value(text: str, typ, key: str):
    """Parse ``text`` as ``typ`` (int, float, bool, str, tuple[float, float], X | None)."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        return parse_value(text, args[0], key)
    if origin is tuple:
        parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
        args = typing.get_args(typ)
        if len(parts) != len(args):
            raise ValueError(f"--set {key}: expected {len(args)} comma-separated values "
                             f"like 1,3; got {text!r}")
        return tuple(parse_value(p.strip(), a, key) for p, a in zip(parts, args))
    if typ is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected a bool (true/false), got {text!r}")
    try:
        return typ(text)
    except ValueError:
        raise ValueError(f"--set {key}: expected {typ.__name__}, got {text!r}") from None


def apply_overrides(cfg: RunConfig, overrides: dict[str, object] | list[str]) -> RunConfig:
    """Apply {'model.hidden_size': 64} (typed values) or ['model.hidden_size=64'] (text)."""
    if isinstance(overrides, (list, tuple)):
        pairs = []
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"--set: expected key=value, got {item!r}")
            k, v = item.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    else:
        pairs = list(overrides.items())
    for key, value in pairs:
        if key not in valid_keys():
            raise ValueError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid_keys())}")
        if key == "seed":
            v = parse_value(value, int, key) if isinstance(value, str) else int(value)
            cfg = dataclasses.replace(cfg, seed=v)
            continue
        sec, name = key.split(".", 1)
        sub = getattr(cfg, sec)
        typ = _field_type(type(sub), name)
        v = parse_value(value, typ, key) if isinstance(value, str) else value
        cfg = dataclasses.replace(cfg, **{sec: dataclasses.replace(sub, **{name: v})})
    return cfg
