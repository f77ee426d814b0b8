"""Every dataset by name, declared once: where its data comes from and whether it is decoded
into a cache first. The CLI's help, ``plstm preprocess`` and the dry run's plan read this
table instead of comparing names (kept import-light: no torch, no numpy)."""

from __future__ import annotations

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


REGISTRY = {d.name: d for d in (
    DatasetSpec("sines", GENERATED, sampled=True, what="frequency discrimination"),
    DatasetSpec("sines2", GENERATED, sampled=True, what="superimposed frequencies"),
    DatasetSpec("adding", GENERATED, sampled=True, what="adding task"),
    DatasetSpec("mnist", FILES, sampled=True, what="sequential MNIST"),
    DatasetSpec("digits", GENERATED, what="scikit-learn 8x8 digits (offline MNIST stand-in)"),
    DatasetSpec("nmnist", FILES, cached=True, what="N-MNIST event recordings"),
    DatasetSpec("synthetic-nmnist", SYNTHETIC, cached=True, what="SYNTHETIC N-MNIST stand-in"),
    DatasetSpec("grid", FILES, cached=True, what="GRID audio-visual corpus"),
    DatasetSpec("synthetic-grid", SYNTHETIC, cached=True, what="SYNTHETIC GRID stand-in"),
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
