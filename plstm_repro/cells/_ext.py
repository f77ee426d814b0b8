"""Lazy build of the C++ kernels (plstm_repro/csrc/plstm_ops.cpp and, in the same module, the
BN-LSTM's bnlstm_ops.cpp) with torch.utils.cpp_extension.

The extension is compiled on first use (35-50 s once) into ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/plstm_repro/torch_extensions`` and reused afterwards. If it cannot be built (no
compiler, no ninja), :func:`load_extension` warns once and returns None, and callers use the
pure-PyTorch path. ``PLSTM_NO_EXTENSION=1`` skips the build (same fallback, no warning).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

_SOURCE = Path(__file__).resolve().parent.parent / "csrc" / "plstm_ops.cpp"
_module = None  # the loaded module, False after a failed build: the only cached state


def _build_dir() -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(root) if root else Path.home() / ".cache" / "plstm_repro" / "torch_extensions"


def _variants() -> list[tuple[str, list[str], list[str]]]:
    """(name, compiler flags, linker flags) to try in order. AVX2 kernels (ATen's Vectorized
    with Sleef) where the CPU has it, the generic build otherwise; -O3, never -ffast-math (it
    breaks the exact remainder). OpenMP first: the kernels split the batch over torch's threads
    with at::parallel_for, which runs serially in a build without it (the second variant, for
    compilers without OpenMP). At run time the OpenMP runtime is the one torch already loaded."""
    flags, name = ["-O3", "-ffp-contract=off"], "plstm_ops"
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
        name += "_avx2"
    return [(name + "_omp", flags + ["-fopenmp"], ["-fopenmp"]), (name, flags, [])]


def _sources() -> list[Path]:
    # One module for both kernels: users pay one build (ninja compiles the files in parallel).
    return [_SOURCE, _SOURCE.with_name("bnlstm_ops.cpp")]


def _build(name: str, cflags: list[str], ldflags: list[str]):
    from torch.utils.cpp_extension import load

    # One folder per variant and per checkout: torch rebuilds when the source's path changes,
    # so two checkouts sharing one folder would rebuild each other's module on every switch.
    where = hashlib.sha1(str(_SOURCE).encode()).hexdigest()[:8]
    build = _build_dir() / f"{name}_{where}"
    build.mkdir(parents=True, exist_ok=True)
    return load(name=name, sources=[str(s) for s in _sources()], extra_cflags=cflags,
                extra_ldflags=ldflags, build_directory=str(build), verbose=False)


def load_extension():
    """The compiled module, or None when it is unavailable (one warning per process)."""
    global _module
    if _module is None:
        if os.environ.get("PLSTM_NO_EXTENSION") == "1":
            _module = False
            return None
        errors = []
        for name, cflags, ldflags in _variants():
            try:
                _module = _build(name, cflags, ldflags)
                break
            except Exception as err:  # noqa: BLE001 - any build failure means: next variant
                text = str(err).strip()
                errors.append(f"{type(err).__name__}: {text.splitlines()[-1] if text else err!r}")
        if _module is None:
            warnings.warn(
                f"plstm_repro: the C++ kernels could not be built ({errors[-1]}); "
                "using the pure-PyTorch reference path (slower).",
                RuntimeWarning,
                stacklevel=2,
            )
            _module = False
        elif len(errors) > 0:
            warnings.warn(
                f"plstm_repro: the C++ kernels were built without OpenMP ({errors[0]}); they "
                "run on one thread.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _module or None
