"""Lazy build of the C++ kernels (plstm_repro/csrc/plstm_ops.cpp and, in the same module, the
BN-LSTM's bnlstm_ops.cpp) with torch.utils.cpp_extension.

The extension is compiled on first use (35-50 s once, announced by one line on stderr) into
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/plstm_repro/torch_extensions``, in a folder named by
the content of the sources, the flags and the torch and Python versions; every later process
(and every checkout with the same sources) imports that module directly, without a compiler.
If it cannot be built (no compiler, no ninja), :func:`load_extension` warns once and returns None, and callers use the
pure-PyTorch path. ``PLSTM_NO_EXTENSION=1`` skips the build (same fallback, no warning).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
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


def _key(cflags: list[str], ldflags: list[str]) -> str:
    """What the module depends on: every source's content, the flags, torch and Python."""
    h = hashlib.sha1(_SOURCE.read_bytes())  # a missing source fails here, as a build would
    for p in sorted(_SOURCE.parent.iterdir()):
        if p.suffix in (".cpp", ".h", ".hpp", ".cu", ".cuh"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    h.update(repr((cflags, ldflags, torch.__version__, sys.version_info[:2])).encode())
    return h.hexdigest()[:12]


def _import_built(name: str, build: Path):
    """The module already built in ``build``, or None."""
    lib = build / f"{name}{'.pyd' if sys.platform == 'win32' else '.so'}"
    if not lib.is_file():
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, lib)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except (ImportError, OSError):  # a partial or foreign file: build again
        return None


def _build(name: str, cflags: list[str], ldflags: list[str]):
    from torch.utils.cpp_extension import load

    # One folder per variant and per content of the sources: once built, every process and
    # checkout imports the module as it is (torch's own check would rebuild when a source's
    # path or ninja's view of it changes); an edited source gets a new folder.
    build = _build_dir() / f"{name}_{_key(cflags, ldflags)}"
    module = _import_built(name, build)
    if module is not None:
        return module
    build.mkdir(parents=True, exist_ok=True)
    print("plstm_repro: compiling the fused kernels, once, ~35 s", file=sys.stderr, flush=True)
    return load(name=name, sources=[str(p) for p in _sources()], extra_cflags=cflags,
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
