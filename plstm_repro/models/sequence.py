"""A recurrent core plus a linear readout: the classifier/regressor every RNN task uses."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SequenceModel(nn.Module):
    """rnn(x, t) -> linear head, read out at each sample's last valid step or at every step.

    ``embed=(num, dim)`` turns integer feature 0 of x (e.g. an N-MNIST pixel address) into a
    learned ``dim``-vector concatenated with the remaining features before the rnn.
    """

    def __init__(self, rnn: nn.Module, num_outputs: int, readout: str = "last",
                 embed: tuple[int, int] | None = None):
        super().__init__()
        if readout not in ("last", "all"):
            raise ValueError(f"readout: expected 'last' or 'all', got {readout!r}")
        self.rnn, self.readout = rnn, readout
        self.embed = None if embed is None else nn.Embedding(*embed)
        self.head = nn.Linear(rnn.hidden_size, num_outputs)

    def forward(self, x: Tensor, t: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            x = torch.cat([self.embed(x[..., 0].long()), x[..., 1:]], -1)
        out, _ = self.rnn(x, t, lengths=lengths)
        if self.readout == "all":
            return self.head(out)
        if lengths is None:
            last = out[:, -1]
        else:
            last = out[torch.arange(out.shape[0], device=out.device), lengths.to(out.device) - 1]
        return self.head(last)

    @property
    def is_phased(self) -> bool:
        return hasattr(self.rnn, "time_gates")
