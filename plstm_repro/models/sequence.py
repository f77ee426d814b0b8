"""A recurrent core plus a linear readout: the classifier/regressor every RNN task uses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..cells.checks import valid_mask


class SequenceModel(nn.Module):
    """rnn(x, t) -> linear head, read out at each sample's last valid step or at every step.

    ``embed=(num, dim)`` turns integer feature 0 of x (e.g. an N-MNIST pixel address) into a
    learned ``dim``-vector concatenated with the remaining features before the rnn.
    ``head="leaky_relu"`` passes the readout through a leaky ReLU (slope 0.01) before the
    softmax, as the authors' dense layer (freq_task.py: DenseLayer(..., leaky_rectify)).
    """

    HEADS = ("linear", "leaky_relu")
    STATS_STEPS = 128  # time steps per slice in update_stats

    def __init__(self, rnn: nn.Module, num_outputs: int, readout: str = "last",
                 embed: tuple[int, int] | None = None, head: str = "linear"):
        super().__init__()
        if readout not in ("last", "all"):
            raise ValueError(f"readout: expected 'last' or 'all', got {readout!r}")
        if head not in self.HEADS:
            raise ValueError(f"model.head: expected one of {', '.join(self.HEADS)}, got {head!r}")
        self.rnn, self.readout, self.head_act = rnn, readout, head
        self.embed = None if embed is None else nn.Embedding(*embed)
        self.head = nn.Linear(rnn.hidden_size, num_outputs)

    def forward(self, x: Tensor, t: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            x = torch.cat([self.embed(self.indices(x, lengths)), x[..., 1:]], -1)
        out, _ = self.rnn(x, t, lengths=lengths)
        if self.readout == "last":
            if lengths is None:
                out = out[:, -1]
            else:
                out = out[torch.arange(out.shape[0], device=out.device),
                          lengths.to(out.device) - 1]
        y = self.head(out)
        return nn.functional.leaky_relu(y, 0.01) if self.head_act == "leaky_relu" else y

    def indices(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """Feature 0 of x as embedding indices; 0 at padded steps, whatever the padding holds
        (NaN there would index out of range)."""
        idx = x[..., 0]
        if lengths is not None:
            idx = torch.where(valid_mask(lengths.to(x.device), x.shape[1]), idx, 0)
        idx = idx.long()
        num = self.embed.num_embeddings
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num):
            raise ValueError(f"x[..., 0]: expected embedding indices in [0, {num}), got values "
                             f"from {int(idx.min())} to {int(idx.max())}")
        return idx

    @torch.no_grad()
    def update_stats(self, x: Tensor, t: Tensor, lengths: Tensor | None = None) -> dict:
        """Sums over the batch, for Table 1's last row (first layer): ``updates_per_neuron``
        (phased: steps with k > 0 at leak 0, as count_updates and the sparse kernel count them;
        other cells: every valid step), and for phased models the time-gate openness summed
        over valid steps (``gate_openness``, divided by ``steps`` by the caller)."""
        T = x.shape[1]
        lengths = torch.full((x.shape[0],), T, device=x.device) if lengths is None else lengths
        steps = float(lengths.sum())
        if not self.is_phased:
            return {"updates_per_neuron": steps}
        rnn = self.rnn
        mask = valid_mask(lengths.to(t.device), T)
        opened = openness = 0.0
        saved, rnn.training = rnn.training, False  # leak 0: the test-time gate
        try:  # in slices of time: the float64 [B, T, H] temporaries stay in cache
            for sl in range(0, T, self.STATS_STEPS):
                k = rnn.time_gates(t[:, sl:sl + self.STATS_STEPS], 0,
                                   mask[:, sl:sl + self.STATS_STEPS])
                opened += float((k > 0).sum())
                openness += float(k.sum())
        finally:
            rnn.training = saved
        H = rnn.hidden_size
        return {"updates_per_neuron": opened / H, "gate_openness": openness / H, "steps": steps}

    @property
    def is_phased(self) -> bool:
        return hasattr(self.rnn, "time_gates")
