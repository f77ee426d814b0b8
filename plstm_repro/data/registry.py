"""Every dataset by name, declared once: where its data comes from, whether it is decoded into
a cache first, and the functions that load, download and prepare it. The CLI's help, ``plstm
preprocess``, the dry run's plan and :mod:`plstm_repro.data` read this table instead of
comparing names (kept import-light: no torch, no numpy; the functions are named as
``"module:function"`` in this package and imported on first use).

The declared functions' signatures:

- ``load(cfg, split, n, seed)``: the split ("train"/"test") of ``n`` items, a :class:`Split`;
- ``download(root, from_dir, progress, echo[, speakers])``: fetch or place the files, return
  where they are in a sentence (``speakers`` only for datasets with ``speakers=True``);
- ``prepare(root, progress, echo[, speakers])``: decode them into caches, return a summary;
- ``stores(root)``: the cache folders a SYNTHETIC dataset's first run generates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

GENERATED = "generated"  # built from the run's seed, nothing on disk
FILES = "files"  # downloaded (or placed with --from) by `plstm download`
SYNTHETIC = "synthetic"  # files generated once by the first run that needs them


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    origin: str  # GENERATED | FILES | SYNTHETIC
    cached: bool = False  # decoded once into a memory-mapped cache by `plstm preprocess`
    sampled: bool = False  # the dry run times a sample of it (cheap to build, in memory)
    what: str = ""
    load: str = ""  # "module:function" (see the module's docstring for the signatures)
    download: str = ""  # FILES and SYNTHETIC datasets
    prepare: str = ""  # cached datasets
    stores: str = ""  # SYNTHETIC datasets: the caches their first run generates
    fresh: bool = False  # can draw new samples every epoch (data.fresh)
    speakers: bool = False  # has speakers (--speakers, data.speakers)
    folder: str = ""  # its folder under the data root, where the loader does not say it
    # the data.* fields its loader reads, besides data.name and data.root (which every dataset
    # has); a config whose other data.* fields are not at their defaults is refused
    fields: tuple[str, ...] = ()
    arch: str = ""  # the network its batches need around the cell ("grid_fusion"), else none
    # model.* defaults of this dataset, where the shared default does not fit it (a config for
    # the dataset built without the field gets this value; see config.apply_overrides)
    model_defaults: tuple[tuple[str, object], ...] = ()

    def function(self, role: str):
        """The declared ``role`` function ("load", "download", "prepare", "stores"), imported."""
        ref = getattr(self, role)
        if not ref:
            raise ValueError(f"dataset {self.name} declares no {role} function")
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


SIZES = ("n_train", "n_test")  # read by load_split and passed to the loader as ``n``
FREQ = SIZES + ("sampling", "protocol", "fresh")
EVENTS = SIZES + ("rho",)
GRID_FIELDS = SIZES + ("audio", "modalities", "modality_dropout", "speakers")
# GRID's networks take the time in seconds (t in ms x 1e-3), not the raw ms of the shared default;
# Merged-1's periods are shorter than a word (a declared choice of Fig. 6c, in
# experiments/audio_visual.py, which reads both values from here)
GRID_TIME_SCALE, GRID_MERGED1_TAU = 1e-3, (40.0, 200.0)
GRID_MODEL = (("model.time_scale", GRID_TIME_SCALE), ("model.merged1_tau", GRID_MERGED1_TAU))

REGISTRY = {d.name: d for d in (
    DatasetSpec("sines", GENERATED, sampled=True, what="frequency discrimination",
                load="sines:load_sines", fresh=True, fields=FREQ),
    DatasetSpec("sines2", GENERATED, sampled=True, what="superimposed frequencies",
                load="sines:load_sines2", fresh=True, fields=FREQ),
    DatasetSpec("adding", GENERATED, sampled=True, what="adding task", load="adding:load",
                fields=SIZES + ("min_len", "max_len")),
    DatasetSpec("mnist", FILES, sampled=True, what="sequential MNIST", load="mnist:load",
                download="mnist:download", fields=SIZES),
    DatasetSpec("digits", GENERATED, what="scikit-learn 8x8 digits (offline MNIST stand-in)",
                load="digits:load"),  # one fixed split: no size, no setting
    DatasetSpec("nmnist", FILES, cached=True, what="N-MNIST event recordings",
                load="nmnist:load_nmnist", download="nmnist:download_real",
                prepare="nmnist:prepare_nmnist", fields=EVENTS),
    DatasetSpec("synthetic-nmnist", SYNTHETIC, cached=True, what="SYNTHETIC N-MNIST stand-in",
                load="nmnist:load_synthetic", download="synthetic_nmnist:download",
                prepare="nmnist:prepare_synthetic", stores="nmnist:synthetic_stores",
                fields=EVENTS),
    DatasetSpec("grid", FILES, cached=True, what="GRID audio-visual corpus",
                load="grid_split:load_grid", download="grid.recipes:download_real",
                prepare="grid.recipes:prepare_real", speakers=True, folder="GRID",
                fields=GRID_FIELDS, arch="grid_fusion", model_defaults=GRID_MODEL),
    DatasetSpec("synthetic-grid", SYNTHETIC, cached=True, what="SYNTHETIC GRID stand-in",
                load="grid_split:load_grid", download="grid.recipes:download_synthetic",
                prepare="grid.recipes:prepare_synthetic",
                stores="grid.recipes:synthetic_stores",
                speakers=True, folder="SyntheticGRID", fields=GRID_FIELDS, arch="grid_fusion",
                model_defaults=GRID_MODEL),
)}


def dataset_spec(name: str) -> DatasetSpec:
    from ..errors import UsageError

    if name not in REGISTRY:
        raise UsageError(f"dataset: unknown {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def names(*origins: str, cached: bool | None = None) -> list[str]:
    """The dataset names of these origins (all when none is given), in declaration order."""
    return [d.name for d in REGISTRY.values() if (not origins or d.origin in origins)
            and (cached is None or d.cached == cached)]


def choices(*origins: str, cached: bool | None = None) -> str:
    """``a | b | c``: the names for a help text."""
    return " | ".join(names(*origins, cached=cached))


def names_where(**fields) -> list[str]:
    """The dataset names whose spec has these field values (``fresh=True``), in order."""
    return [d.name for d in REGISTRY.values()
            if all(getattr(d, k) == v for k, v in fields.items())]
