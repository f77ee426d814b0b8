"""Range and choice checks of every config field, run when a config section is built.

A bad value fails here in one line (the key, the value, what is allowed), before any run is
created in the store; sizes that cannot fit in this machine's memory are refused with an
estimate. Kept apart from :mod:`plstm_repro.config` so the rules read as one table.
"""

from __future__ import annotations

import math
import os

from .errors import ConfigError

SEED_MAX = 2**31 - 1  # numpy's and torch's generators take seeds up to 2^32; keep margin


def _int(lo: int, hi: int | None = None):
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo and \
            (hi is None or v <= hi)
    return ok, f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")


def _real(lo: float, hi: float | None = None, lo_open: bool = False):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return (v > lo if lo_open else v >= lo) and (hi is None or v <= hi)
    low = f"> {lo:g}" if lo_open else f">= {lo:g}"
    return ok, f"a finite number {low}" + (f" and <= {hi:g}" if hi is not None else "")


def _one_of(*choices: str):
    return (lambda v: v in choices), "one of " + ", ".join(choices)


def _pair():
    def ok(v):
        return isinstance(v, tuple) and len(v) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in v) and v[0] <= v[1]
    return ok, "two finite numbers a,b with a <= b"


RULES = {
    "data": {"n_train": _int(1), "n_test": _int(1),
             "sampling": _one_of("standard", "highres", "async"),
             "protocol": _one_of("text", "authors"), "min_len": _int(1), "max_len": _int(1),
             "rho": _real(0.0, 1.0, lo_open=True), "audio": _one_of("hi", "lo"),
             "modalities": _one_of("both", "audio", "video"),
             "modality_dropout": _real(0.0, 1.0)},
    "model": {"hidden_size": _int(1), "num_layers": _int(1), "readout": _one_of("last", "all"),
              "r_on": _real(0.0, 1.0, lo_open=True), "leak": _real(0.0, 1.0),
              "tau_init": _pair(), "merged1_tau": _pair(), "tau_dist": _one_of("log_uniform", "uniform"),
              "time_scale": _real(0.0), "embed_dim": _int(0),
              "shift_max": _real(0.0), "init": _one_of("torch", "authors"),
              "head": _one_of("linear", "leaky_relu"), "bn": _one_of("recurrent", "input")},
    "train": {"epochs": _int(1), "batch_size": _int(1), "lr": _real(0.0, lo_open=True),
              "grad_clip": _real(0.0), "log_every": _int(0),  # grad_clip 0: no clipping
              "max_steps": _int(0), "eval_batch_size": _int(1)},
}


def check_section(section: str, obj) -> None:
    """Every ruled field of ``obj`` (a config section) in its range, else one ConfigError."""
    for name, (ok, allowed) in RULES[section].items():
        value = getattr(obj, name)
        if not ok(value):
            raise ConfigError(f"config: {section}.{name}={value!r} is out of range; "
                              f"allowed: {allowed}")


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


# generated datasets: (padded steps, values per step incl. the time) of one sample
_SAMPLE_SHAPE = {"sines": (125, 2), "sines2": (125, 2), "adding": (None, 3)}


def training_set_bytes(data) -> int | None:
    """A rough lower bound of the generated training set in memory (float32, padded)."""
    shape = _SAMPLE_SHAPE.get(data.name)
    if shape is None:
        return None
    steps = data.max_len if shape[0] is None else shape[0] * (
        10 if data.sampling == "highres" else 1)
    return data.n_train * steps * shape[1] * 4


def model_bytes(model) -> int:
    """Weights, gradients and Adam's two moments (float32) of the recurrent layers' four gate
    matrices, a lower bound of what training needs."""
    h = model.hidden_size
    weights = 4 * h * (2 * h + 1) * model.num_layers
    return 4 * 4 * weights


def check_run(cfg) -> None:
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or \
            not 0 <= cfg.seed <= SEED_MAX:
        raise ConfigError(f"config: seed={cfg.seed!r} is out of range; allowed: an integer "
                          f">= 0 and <= {SEED_MAX}")
    limit = memory_bytes()
    if limit is None:
        return
    need = model_bytes(cfg.model)
    if need > limit:
        raise ConfigError(
            f"config: model.hidden_size={cfg.model.hidden_size} (num_layers "
            f"{cfg.model.num_layers}) needs at least {_gib(need)} to train (weights, gradients, "
            f"Adam's moments), more than this machine's {_gib(limit)}")
    data = training_set_bytes(cfg.data)
    if data is not None and data > limit:
        raise ConfigError(
            f"config: data.n_train={cfg.data.n_train} of {cfg.data.name} needs at least "
            f"{_gib(data)} in memory, more than this machine's {_gib(limit)}")


def check_device(device: str, option: str = "--set train.device") -> str:
    """``device`` names a device torch can use here (``option``: what the user wrote)."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"{option}: {device!r} is not a device (cpu, cuda, "
                         "cuda:1, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option}: {device} asked for, but no CUDA device is visible here "
                          "(torch sees no CUDA GPU; a CUDA wheel: make install TORCH_SPEC=...)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"{option}: {device} asked for, but there are only "
                         f"{torch.cuda.device_count()} GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{option}: mps asked for, but it is not available here")
    return device
