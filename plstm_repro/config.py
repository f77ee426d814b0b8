"""Frozen dataclass configs and typed ``--set section.key=value`` overrides.

A run's config has two parts. Its *spec* (every field but :data:`EXECUTION_KEYS`) defines the
experiment: two runs with equal specs are the same grid point, whatever machine made them. Its
*execution* (the device, the data root, the evaluation batch size, extra step logging) says how
one process ran it: logged as params, never hashed, free to change on resume.
:func:`spec_hash` hashes only the spec fields whose value differs from the field's default, so
adding a field with a default leaves every stored run's hash as it was. Each section checks its
values when it is built (see :mod:`plstm_repro.config_checks`): a bad value fails in one line
before any run exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field

from .config_checks import check_run, check_section
from .errors import ConfigError


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

    def __post_init__(self):
        check_section("data", self)


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

    def __post_init__(self):
        check_section("model", self)


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

    def __post_init__(self):
        check_section("train", self)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def __post_init__(self):
        check_run(self)


SECTIONS = ("data", "model", "train")
SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
# how one process runs a config, not what the experiment is: logged, never hashed
EXECUTION_KEYS = ("data.root", "train.device", "train.eval_batch_size", "train.log_every")
SPEC_VERSION = 1  # bump when the meaning of a hashed field changes (old runs stop counting)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (e.g. a checkpoint); unknown keys are errors."""
    kw = {}
    for f in dataclasses.fields(RunConfig):
        if f.name not in d:
            continue
        if f.name in SECTIONS:
            cls = SECTION_TYPES[f.name]
            sec = dict(d[f.name])
            names = {g.name: g for g in dataclasses.fields(cls)}
            for k, v in sec.items():
                if k not in names:
                    raise ConfigError(f"config: unknown key {f.name}.{k}")
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


def _defaults(cls=None) -> dict[str, object]:
    return flat((cls or RunConfig)())


def spec(cfg: RunConfig) -> dict[str, object]:
    """The fields that define the experiment (flat keys), execution keys left out."""
    return {k: v for k, v in flat(cfg).items() if k not in EXECUTION_KEYS}


def execution(cfg: RunConfig) -> dict[str, object]:
    """How this process runs ``cfg`` (flat keys): logged, never part of its identity."""
    return {k: v for k, v in flat(cfg).items() if k in EXECUTION_KEYS}


def spec_hash(cfg: RunConfig) -> str:
    """Versioned hash of the spec fields that differ from their defaults: runs with the same
    hash are the same experiment, on any device, data root or evaluation batch size; a field
    added later with a default changes no stored run's hash."""
    default = _defaults(type(cfg))
    changed = {k: list(v) if isinstance(v, tuple) else v for k, v in spec(cfg).items()
               if v != default[k]}
    blob = json.dumps(changed, sort_keys=True, default=str)
    return f"s{SPEC_VERSION}-" + hashlib.sha1(blob.encode()).hexdigest()[:16]


config_hash = spec_hash  # the older name, kept for callers outside this package


def same_spec(a: RunConfig, b: RunConfig) -> bool:
    return spec(a) == spec(b)


def with_execution(cfg: RunConfig, source: RunConfig) -> RunConfig:
    """``cfg`` run the way ``source`` runs: its execution keys copied over."""
    return apply_overrides(cfg, execution(source))


def from_params(params: dict[str, str]) -> RunConfig:
    """The config a tracked run logged as params (text): keys it lacks (fields added since)
    take their defaults. Raises ConfigError on a key or value this version cannot read."""
    known = set(valid_keys())
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise ConfigError(f"config: unknown keys {', '.join(unknown)}")
    sections: dict[str, dict] = {sec: {} for sec in SECTIONS}
    seed = 0
    for key, text in params.items():
        if key == "seed":
            seed = parse_value(str(text), int, key)
            continue
        sec, name = key.split(".", 1)
        typ = _field_type(SECTION_TYPES[sec], name)
        sections[sec][name] = parse_value(str(text), typ, key)
    return RunConfig(**{sec: SECTION_TYPES[sec](**kw) for sec, kw in sections.items()},
                     seed=seed)


def valid_keys() -> list[str]:
    keys = ["seed"]
    for sec in SECTIONS:
        cls = SECTION_TYPES[sec]
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
            raise ConfigError(f"--set {key}: expected {len(args)} comma-separated values "
                             f"like 1,3; got {text!r}")
        return tuple(parse_value(p.strip(), a, key) for p, a in zip(parts, args))
    if typ is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}: expected a bool (true/false), got {text!r}")
    try:
        if typ is int and any(c in text for c in ".eE") and float(text).is_integer():
            return int(float(text))  # 1e7, 5e3: integral numbers written as floats
        return typ(text)
    except (ValueError, OverflowError):
        raise ConfigError(f"--set {key}: expected {typ.__name__}, got {text!r}") from None


def apply_overrides(cfg: RunConfig, overrides: dict[str, object] | list[str]) -> RunConfig:
    """Apply {'model.hidden_size': 64} (typed values) or ['model.hidden_size=64'] (text)."""
    if isinstance(overrides, (list, tuple)):
        pairs = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set: expected key=value, got {item!r}")
            k, v = item.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    else:
        pairs = list(overrides.items())
    for key, value in pairs:
        if key not in valid_keys():
            raise ConfigError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid_keys())}")
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
