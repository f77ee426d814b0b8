"""Every way a PhasedLSTM forward can run, behind one call, so a test covers them all.

- "reference": the PyTorch loop over functional.plstm_step (autograd backward);
- "fused": the C++ kernels with the hand-written backward (skipped where they cannot be built);
- "torch": the fused algorithm in PyTorch ops (the CUDA path), run on CPU tensors;
- "sparse": event-driven inference, eval only, no gradient.
"""

from __future__ import annotations

import pytest

from plstm_repro.cells import _ext, fused
from plstm_repro.cells.sparse import sparse_forward

BACKENDS = ("reference", "fused", "torch", "sparse")
TRAINABLE = ("reference", "fused", "torch")


def use_backend(model, name: str, monkeypatch):
    """Switch ``model`` (a PhasedLSTM) to ``name``; returns forward(x, t, state, lengths)."""
    if name == "fused" and _ext.load_extension() is None:
        pytest.skip("C++ kernels unavailable")
    if name == "torch":
        monkeypatch.setattr(fused, "kernels", lambda device: fused.TorchOps)
    if name == "sparse":
        if model.training:
            pytest.skip("sparse inference runs in eval() only")
        model.backend = "auto"
        return lambda x, t, state=None, lengths=None: sparse_forward(model, x, t, state,
                                                                     lengths)[:2]
    model.backend = "reference" if name == "reference" else "fused"
    return lambda x, t, state=None, lengths=None: model(x, t, state, lengths)
