"""Frozen dataclass configs and typed ``--set section.key=value`` overrides.

A run's config has two parts. Its *spec* (every field but :data:`EXECUTION_KEYS`) defines the
experiment: two runs with equal specs are the same grid point, whatever machine made them. Its
*execution* (the device, the data root, the evaluation batch size, extra step logging) says how
one process ran it: logged as params, never hashed, free to change on resume.
:func:`spec_hash` hashes only the spec fields whose value differs from the field's default, so
adding a field with a default leaves every stored run's hash as it was. Each section checks its
values when it is built (see :mod:`plstm_repro.config_checks`): a bad value fails in one line
before any run exists. A field the config's model or dataset does not use (declared in
:mod:`plstm_repro.config_fields`) must stay at its default: it is refused when the config is
built, left out of the spec, and reset when a stored run or checkpoint is read.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field

from .config_checks import check_run, check_section
from .config_fields import check_owned, dataset_defaults, normalise, owned
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
    # GRID's fusion network: Merged-1's periods tau ~ U(a, b) ms (sec. 3.4's text: 10, 1000)
    merged1_tau: tuple[float, float] = (10.0, 1000.0)
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
        check_owned(flat(self), _section_defaults())


SECTIONS = ("data", "model", "train")
SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
# how one process runs a config, not what the experiment is: logged, never hashed
EXECUTION_KEYS = ("data.root", "train.device", "train.eval_batch_size", "train.log_every")
SPEC_VERSION = 1  # bump when the meaning of a hashed field changes (old runs stop counting)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (e.g. a checkpoint); unknown keys are errors.
    Fields its model or dataset does not use are reset to their defaults (a checkpoint made
    before they were refused)."""
    values: dict[str, object] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name not in d:
            continue
        if f.name in SECTIONS:
            names = {g.name for g in dataclasses.fields(SECTION_TYPES[f.name])}
            for k, v in dict(d[f.name]).items():
                if k not in names:
                    raise ConfigError(f"config: unknown key {f.name}.{k}")
                values[f"{f.name}.{k}"] = tuple(v) if isinstance(v, list) else v
        else:
            values[f.name] = d[f.name]
    return _build(normalise(values, _section_defaults()))


def _build(values: dict[str, object], base: RunConfig | None = None) -> RunConfig:
    """``base`` (default: the defaults) with these typed flat values, each section built once
    (its checks run once) and the RunConfig once (so the checks see the finished config)."""
    base = base if base is not None else RunConfig()
    kw: dict[str, dict] = {sec: {} for sec in SECTIONS}
    top: dict[str, object] = {}
    for key, value in values.items():
        sec, _, name = key.partition(".")
        if name:
            kw[sec][name] = value
        else:
            top[key] = value
    sections = {sec: dataclasses.replace(getattr(base, sec), **kw[sec])
                for sec in SECTIONS if kw[sec]}
    return dataclasses.replace(base, **sections, **top)


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


@functools.lru_cache(maxsize=1)
def _section_defaults() -> dict[str, object]:
    """The shared defaults as flat keys, without building a RunConfig (whose checks need them)."""
    out: dict[str, object] = {"seed": 0}
    for sec, cls in SECTION_TYPES.items():
        out.update({f"{sec}.{k}": v for k, v in dataclasses.asdict(cls()).items()})
    return out


def spec(cfg: RunConfig) -> dict[str, object]:
    """The fields that define the experiment (flat keys): those its model and dataset use,
    execution keys left out."""
    values = flat(cfg)
    dataset, model = str(values["data.name"]), str(values["model.name"])
    return {k: v for k, v in values.items()
            if k not in EXECUTION_KEYS and owned(k, dataset, model)}


def execution(cfg: RunConfig) -> dict[str, object]:
    """How this process runs ``cfg`` (flat keys): logged, never part of its identity."""
    return {k: v for k, v in flat(cfg).items() if k in EXECUTION_KEYS}


def spec_hash(cfg: RunConfig) -> str:
    """Versioned hash of the spec fields that differ from their defaults: runs with the same
    hash are the same experiment, on any device, data root or evaluation batch size; a field
    added later with a default changes no stored run's hash, nor does a field the run's model
    or dataset does not use (:func:`spec` leaves those out). A dataset's own model default
    (GRID's time_scale) is compared with the shared default, as if the artifact had set it."""
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
    take their defaults, fields its model or dataset does not use (logged before they were
    refused) are reset to them. Raises ConfigError on a key or value this version cannot
    read."""
    known = set(valid_keys())
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise ConfigError(f"config: unknown keys {', '.join(unknown)}")
    values = {key: parse_value(str(text), _key_type(key), key) for key, text in params.items()}
    return _build(normalise(values, _section_defaults()))


def valid_keys() -> list[str]:
    keys = ["seed"]
    for sec in SECTIONS:
        cls = SECTION_TYPES[sec]
        keys += [f"{sec}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def _field_type(cls, name: str):
    return typing.get_type_hints(cls)[name]


def _key_type(key: str):
    if key == "seed":
        return int
    sec, name = key.split(".", 1)
    return _field_type(SECTION_TYPES[sec], name)


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
    """Apply {'model.hidden_size': 64} (typed values) or ['model.hidden_size=64'] (text), all at
    once: the config is checked as a whole after them. Where ``data.name`` changes, the model
    fields the overrides leave out that are at the old dataset's default take the new dataset's
    (GRID: time_scale 1e-3; back to the shared default on leaving it)."""
    if isinstance(overrides, (list, tuple)):
        pairs = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set: expected key=value, got {item!r}")
            k, v = item.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    else:
        pairs = list(overrides.items())
    values: dict[str, object] = {}
    for key, value in pairs:
        if key not in valid_keys():
            raise ConfigError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid_keys())}")
        if isinstance(value, str):
            value = parse_value(value, _key_type(key), key)
        values[key] = int(value) if key == "seed" else value
    return _build({**_moved_defaults(cfg, values), **values}, cfg)


def _moved_defaults(cfg: RunConfig, values: dict[str, object]) -> dict[str, object]:
    """The dataset defaults that follow a change of ``data.name`` (see apply_overrides)."""
    old, new = cfg.data.name, values.get("data.name", cfg.data.name)
    if new == old:
        return {}
    shared, current = _section_defaults(), flat(cfg)
    was, now = dataset_defaults(str(old)), dataset_defaults(str(new))
    return {k: now.get(k, shared[k]) for k in {*was, *now}
            if k not in values and current[k] == was.get(k, shared[k])}
