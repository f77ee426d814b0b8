"""Lazy build of the C++ kernels (plstm_repro/csrc/plstm_ops.cpp) with torch.utils.cpp_extension.

The extension is compiled on first use (35-50 s once) into ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/plstm_repro/torch_extensions`` and reused afterwards. If it cannot be built (no
compiler, no ninja), :func:`load_extension` warns once and returns None, and callers use the
pure-PyTorch path. ``PLSTM_NO_EXTENSION=1`` skips the build (same fallback, no warning).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

_SOURCE = Path(__file__).resolve().parent.parent / "csrc" / "plstm_ops.cpp"
_module = None  # the loaded module, False after a failed build: the only cached state


def _build_dir() -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(root) if root else Path.home() / ".cache" / "plstm_repro" / "torch_extensions"


def _flags() -> tuple[str, list[str]]:
    """Name and compiler flags. AVX2 kernels (ATen's Vectorized with Sleef) where the CPU has it;
    the generic build otherwise. -O3, never -ffast-math (it breaks the exact remainder)."""
    flags, name = ["-O3", "-ffp-contract=off", "-fopenmp"], "plstm_ops"
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
        name += "_avx2"
    return name, flags


def load_extension():
    """The compiled module, or None when it is unavailable (one warning per process)."""
    global _module
    if _module is None:
        if os.environ.get("PLSTM_NO_EXTENSION") == "1":
            _module = False
        else:
            try:
                from torch.utils.cpp_extension import load

                name, flags = _flags()
                build = _build_dir() / name  # one folder per variant: no shared objects
                build.mkdir(parents=True, exist_ok=True)
                _module = load(name=name, sources=[str(_SOURCE)], extra_cflags=flags,
                               extra_ldflags=["-fopenmp"],
                               build_directory=str(build), verbose=False)
            except Exception as err:  # noqa: BLE001 - any build failure means: fall back
                warnings.warn(
                    f"plstm_repro: the C++ kernels could not be built ({type(err).__name__}: "
                    f"{str(err).strip().splitlines()[-1] if str(err).strip() else err!r}); "
                    "using the pure-PyTorch reference path (slower).",
                    RuntimeWarning,
                    stacklevel=2,
                )
                _module = False
    return _module or None
