"""Input validation shared by every recurrent model: one clear ValueError per bad argument
(and the kernels a backend setting resolves to, which fails the same way)."""

from __future__ import annotations

import torch
from torch import Tensor


def check_sequence_inputs(
    x: Tensor,
    t: Tensor,
    lengths: Tensor | None,
    input_size: int,
    batch_first: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate (x, t, lengths); return them batch-first with lengths as int64 on x's device.

    x is [B, T, F] ([T, B, F] when not batch_first), t is [B, T] ([T, B]) per sample and step,
    lengths [B] with 1 <= lengths[b] <= T. Timestamps of valid steps must be finite.
    """
    order = "[B, T, F]" if batch_first else "[T, B, F]"
    t_order = "[B, T]" if batch_first else "[T, B]"
    if not torch.is_tensor(x) or x.dim() != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"x: expected a 3-d tensor {order}, got {shape}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"x: expected {order} with F = input_size = {input_size}, got {tuple(x.shape)}"
        )
    if not batch_first:
        x = x.transpose(0, 1)
    B, T, _ = x.shape
    if T == 0:
        raise ValueError(f"x: expected at least one time step, got {tuple(x.shape)}")
    if not torch.is_tensor(t):
        raise ValueError(f"t: expected a tensor {t_order} of timestamps, got {type(t).__name__}")
    if not batch_first and t.dim() == 2:
        t = t.transpose(0, 1)
    if tuple(t.shape) != (B, T):
        want = (B, T) if batch_first else (T, B)
        raise ValueError(
            f"t: expected timestamps per sample and step {t_order} = {want}, got {tuple(t.shape)}"
        )
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"t: expected a floating or integer tensor, got {t.dtype}")
    if lengths is not None:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(f"lengths: expected shape [B] = ({B},), got {tuple(lengths.shape)}")
        if lengths.is_floating_point():
            raise ValueError(f"lengths: expected an integer tensor, got {lengths.dtype}")
        lengths = lengths.to(device=x.device, dtype=torch.int64)
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(
                f"lengths: expected values in [1, T] = [1, {T}], got min {lo} and max {hi}"
            )
    valid = t if lengths is None else t[valid_mask(lengths, T).to(t.device)]
    if t.is_floating_point() and not bool(torch.isfinite(valid).all()):
        raise ValueError("t: timestamps of valid steps must be finite (found NaN or inf)")
    return x, t, lengths


def check_dtype(name: str, tensor: Tensor, want: torch.dtype, what: str = "the model's parameters"):
    """ValueError naming ``name`` and both dtypes when ``tensor`` is not of dtype ``want``."""
    if tensor.dtype != want:
        raise ValueError(f"{name}: dtype {tensor.dtype} does not match {what} ({want}); "
                         f"convert it with .to({want}) or the model with .to({tensor.dtype})")


def check_dtypes(x: Tensor, state, want: torch.dtype) -> None:
    """x and each state tensor in the parameters' dtype ``want``."""
    check_dtype("x", x, want)
    for s in state or ():
        check_dtype("state", s, want)


def zero_padding(x: Tensor, t: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """x [B, T, F] and t [B, T] with 0 at padded steps (n >= lengths[b]).

    Padded steps must never read the input: a gate of 0 keeps the state as lerp(h, h~, 0) =
    h + 0 * (h~ - h), which is NaN when h~ is, and NaN or inf is what collates often leave in the
    padding. Zeroing it here, once, keeps every backend (and every gradient) finite.
    """
    if lengths is None or int(lengths.min()) == x.shape[1]:
        return x, t
    mask = valid_mask(lengths, x.shape[1])
    return torch.where(mask.unsqueeze(-1), x, 0.0), torch.where(mask.to(t.device), t, 0)


def valid_mask(lengths: Tensor, T: int) -> Tensor:
    """[B, T] bool: step n of sample b is valid when n < lengths[b]."""
    return torch.arange(T, device=lengths.device) < lengths.unsqueeze(1)


def check_state(state, num_layers: int, B: int, H: int, n: int, name: str = "state"):
    """state: None, or n tensors [num_layers, B, H] (n = 2 for (h, c), 1 for h alone)."""
    if state is None:
        return None
    tensors = (state,) if torch.is_tensor(state) else tuple(state)
    if len(tensors) != n:
        raise ValueError(f"{name}: expected {n} tensor(s) [num_layers, B, H], got {len(tensors)}")
    want = (num_layers, B, H)
    for s in tensors:
        if not torch.is_tensor(s) or tuple(s.shape) != want:
            got = tuple(s.shape) if torch.is_tensor(s) else type(s).__name__
            raise ValueError(f"{name}: expected [num_layers, B, H] = {want}, got {got}")
    return tensors


def check_backend(value: str, backends: tuple[str, ...]) -> str:
    """``value`` if it is one of ``backends``, else ValueError."""
    if value not in backends:
        raise ValueError(f"backend: expected one of {backends}, got {value!r}")
    return value


def choose_kernels(backend: str, x: Tensor, build):
    """The kernels a forward with ``backend`` runs for ``x``, or None for the reference loop.

    "compiled": torch.compile's build (any device); "fused"/"auto": ``build(device)``, the C++
    kernels (None where they cannot be built). "fused" and "compiled" raise ValueError where
    their path cannot run (dtype, missing build); "auto" then falls back to the loop.
    """
    if backend == "reference":
        return None
    ok_dtype = x.dtype in (torch.float32, torch.float64)
    if backend == "compiled" and ok_dtype:
        from .compiled import CompiledOps

        return CompiledOps()
    ops = build(x.device) if ok_dtype else None
    if ops is None and backend in ("fused", "compiled"):
        why = f"dtype {x.dtype}" if not ok_dtype else "the C++ kernels could not be built"
        raise ValueError(f"backend='fused' is unavailable here ({why}); use 'auto'")
    return ops
