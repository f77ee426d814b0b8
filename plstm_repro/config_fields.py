"""Which config fields each model and each dataset uses, declared once (kept import-light).

A model's ``model.*`` fields are declared here, per model name (:data:`MODEL_FIELDS`), and for a
dataset whose batches need a network built around the cell (GRID's audio-visual fusion network,
``arch="grid_fusion"`` in the registry) per cell of that network (:data:`FUSION_FIELDS`). A
dataset's ``data.*`` fields are declared with the dataset in :mod:`plstm_repro.data.registry`
(``fields``), with the model defaults it brings (``model_defaults``). ``training/build.py`` and
the loaders read exactly these fields (``tests/test_config_fields.py`` records what they read).

Every config has ``data.name``, ``model.name``, ``seed``, every ``train.*`` field and the
execution keys. Any other field a config's model or dataset does not use must stay at its default:
:func:`check_owned` refuses it in one line when the config is built, :func:`used_keys` is what
the spec hash covers, and :func:`normalise` resets such fields when a stored run or checkpoint
(made before this rule, when an artifact gave every variant the same settings) is read.
"""

from __future__ import annotations

from .data.registry import REGISTRY
from .errors import ConfigError

# What users type -> model name.
ALIASES = {"phased": "phased_lstm", "plstm": "phased_lstm", "bn": "bn_lstm", "pgru": "phased_gru"}

SEQUENCE = ("hidden_size", "num_layers", "readout", "embed_dim", "init", "head")
TIME_GATES = ("r_on", "leak", "tau_init", "tau_dist", "learn_time", "learn_r_on", "shift_max")
# model name -> the model.* fields (besides model.name) that build.make_model reads for it
MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    "lstm": SEQUENCE + ("time_scale",),
    "bn_lstm": SEQUENCE + ("time_scale", "bn"),
    "phased_lstm": SEQUENCE + TIME_GATES + ("peephole",),
    "phased_gru": SEQUENCE + TIME_GATES,
    "cnn": (),  # the event-frame CNN: its layers are fixed, its input is the dataset's sensor
}
MODELS = tuple(MODEL_FIELDS)
# GRID's audio-visual fusion network (models/av_fusion.py), per cell it is built around: the
# layer widths from hidden_size, the time input's scale, the merged layers' time gates
FUSION_FIELDS: dict[str, tuple[str, ...]] = {
    "phased_lstm": ("hidden_size", "time_scale", "r_on", "leak", "learn_time", "merged1_tau"),
    "lstm": ("hidden_size", "time_scale"),
    "bn_lstm": ("hidden_size", "time_scale", "bn"),
}
ALWAYS = ("data.name", "data.root", "model.name", "seed")  # with every train.* field


def canonical(model: str) -> str:
    return ALIASES.get(model, model)


def model_fields(dataset: str, model: str) -> tuple[str, ...] | None:
    """The model.* fields ``model`` uses on ``dataset`` (flat keys), None for a model this
    dataset (or this package) does not have."""
    spec = REGISTRY.get(dataset)
    table = FUSION_FIELDS if spec is not None and spec.arch == "grid_fusion" else MODEL_FIELDS
    names = table.get(canonical(model))
    return None if names is None else tuple(f"model.{n}" for n in names)


def data_fields(dataset: str) -> tuple[str, ...] | None:
    """The data.* fields ``dataset``'s loader reads (flat keys), None for an unknown dataset."""
    spec = REGISTRY.get(dataset)
    return None if spec is None else tuple(f"data.{n}" for n in spec.fields)


def owned(key: str, dataset: str, model: str) -> bool:
    """Does a config of ``dataset`` and ``model`` use the flat ``key``? Keys of an unknown
    dataset or model count as used (the name itself is refused elsewhere, in one line)."""
    if key in ALWAYS or key.startswith("train."):
        return True
    fields = data_fields(dataset) if key.startswith("data.") else model_fields(dataset, model)
    return fields is None or key in fields


def used_keys(dataset: str, model: str, keys) -> list[str]:
    """The keys of ``keys`` that a config of ``dataset`` and ``model`` uses."""
    return [k for k in keys if owned(k, dataset, model)]


def dataset_defaults(dataset: str) -> dict[str, object]:
    """The model.* defaults ``dataset`` declares (flat keys)."""
    spec = REGISTRY.get(dataset)
    return dict(spec.model_defaults) if spec is not None else {}


def effective_defaults(dataset: str, defaults: dict[str, object]) -> dict[str, object]:
    """``defaults`` (flat keys, the shared ones) with ``dataset``'s own model defaults."""
    return {**defaults, **dataset_defaults(dataset)}


def _who(key: str, dataset: str, model: str) -> str:
    if key.startswith("data."):
        return f"the dataset {dataset}"
    spec = REGISTRY.get(dataset)
    if spec is not None and spec.arch == "grid_fusion":
        return f"the model {model} in {dataset}'s audio-visual network"
    return f"the model {model}"


def check_owned(flat_cfg: dict[str, object], defaults: dict[str, object]) -> None:
    """Every field ``flat_cfg``'s model and dataset do not use is at its default (the shared one
    or the dataset's own), else one ConfigError naming the first such key, the
    model or dataset, and the fields it takes. ``defaults`` are the shared defaults."""
    dataset, model = str(flat_cfg["data.name"]), str(flat_cfg["model.name"])
    spec = REGISTRY.get(dataset)
    if spec is not None and spec.arch == "grid_fusion" and model_fields(dataset, model) is None:
        raise ConfigError(f"config: model.name={model!r}: {dataset}'s audio-visual network is "
                          f"built around {', '.join(FUSION_FIELDS)}")
    default = effective_defaults(dataset, defaults)
    for key, value in flat_cfg.items():
        # a field left at the shared default is not set, whatever the dataset's own default
        if key not in default or value in (default[key], defaults.get(key)):
            continue
        if not owned(key, dataset, model):
            section = key.split(".", 1)[0]
            fields = data_fields(dataset) if section == "data" else \
                model_fields(dataset, model)
            takes = ", ".join(fields) if fields else f"none but {section}.name"
            raise ConfigError(f"config: {key}={value!r}: {_who(key, dataset, model)} does not "
                              f"use {key}; its fields: {takes}")


def normalise(flat_cfg: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
    """``flat_cfg`` with every field its model and dataset do not use reset to its default: a
    stored run's or checkpoint's config as this version builds it (never for user input)."""
    dataset, model = str(flat_cfg.get("data.name", defaults["data.name"])), \
        str(flat_cfg.get("model.name", defaults["model.name"]))
    default = effective_defaults(dataset, defaults)
    return {k: (v if owned(k, dataset, model) or k not in default else default[k])
            for k, v in flat_cfg.items()}
