r"""Baselines with the same ``forward(x, t, state=None, lengths=None)`` as PhasedLSTM.

Both get the timestamp as an extra input feature, as in the paper (sec. 3.1: "for the regular LSTM
and the BN-LSTM, the timestamp is used as an additional input feature dimension"), scaled by
``time_scale`` (e.g. 1e-3 to feed microseconds as milliseconds).

The recurrent BN-LSTM lives in :mod:`.bn_lstm`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import check_dtypes, check_sequence_inputs, check_state, valid_mask


def append_time(x: Tensor, t: Tensor, time_scale: float) -> Tensor:
    """[B, T, F] -> [B, T, F + 1]: t (scaled in float64, then cast) as the last feature."""
    return torch.cat([x, (t.to(torch.float64) * time_scale).to(x.dtype).unsqueeze(-1)], -1)


class LSTM(nn.Module):
    """``torch.nn.LSTM`` with time as an extra input feature; padding handled by packing.

    ``forward(x, t, state=None, lengths=None) -> (out, (h_n, c_n))``; the wrapped module is
    ``self.lstm`` (its input size is ``input_size + 1``).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, time_scale: float = 1.0, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.time_scale = batch_first, time_scale
        self.lstm = nn.LSTM(input_size + 1, hidden_size, num_layers, bias=bias, batch_first=True,
                            device=device, dtype=dtype)

    def forward(self, x: Tensor, t: Tensor, state=None, lengths: Tensor | None = None):
        x, t, lengths = check_sequence_inputs(x, t, lengths, self.input_size, self.batch_first)
        B, T, _ = x.shape
        state = check_state(state, self.num_layers, B, self.hidden_size, 2)
        check_dtypes(x, state, self.lstm.weight_hh_l0.dtype)
        xin = self.features(append_time(x, t.to(x.device), self.time_scale), lengths)
        if lengths is None or bool((lengths == T).all()):
            out, (h, c) = self.lstm(xin, state)
        else:
            out, (h, c) = self._segments(xin, lengths, state)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, (h, c)

    def features(self, xin: Tensor, lengths: Tensor | None) -> Tensor:
        """The LSTM's input [B, T, F + 1] (x and scaled t); subclasses may transform it."""
        return xin


    def _segments(self, xin: Tensor, lengths: Tensor, state):
        """Exact variable lengths without packing (packed sequences run ~50x slower on CPU):
        sorted by length, plain nn.LSTM calls between consecutive length boundaries, each
        carrying the state of the samples still running."""
        B, T, _ = xin.shape
        order = torch.argsort(lengths, descending=True)
        xs, ls = xin[order], lengths[order]
        if state is None:
            z = xin.new_zeros(self.num_layers, B, self.hidden_size)
            state = (z, z)
        h, c = state[0][:, order], state[1][:, order]
        pieces, start = [], 0
        for end in torch.unique(ls).tolist():  # ascending
            n = int((ls >= end).sum())  # ls is descending: the first n still run
            o, (hn, cn) = self.lstm(xs[:n, start:end], (h[:, :n].contiguous(),
                                                        c[:, :n].contiguous()))
            pieces.append(nn.functional.pad(o, (0, 0, 0, 0, 0, B - n)))
            h, c = torch.cat([hn, h[:, n:]], 1), torch.cat([cn, c[:, n:]], 1)
            start = end
        out = torch.cat(pieces, 1)
        out = nn.functional.pad(out, (0, 0, 0, T - out.shape[1]))
        inv = torch.argsort(order)
        return out[inv], (h[:, inv], c[:, inv])


class InputBNLSTM(LSTM):
    """The authors' "BN-LSTM" for the frequency tasks (public_plstm ``bnlstm.py``, used by
    ``freq_task.py`` with ``--batch_norm 1``): batch normalisation of the *inputs* (the wave and
    the raw timestamp) over batch and time, then a plain LSTM; no normalisation inside the
    recurrence (that is :class:`BNLSTM`, Cooijmans et al.). Statistics over the valid steps only
    (theirs also count the left padding); lasagne's BatchNormLayer epsilon 1e-4 and running
    average 0.1, running statistics at test time.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, time_scale: float = 1.0, device=None, dtype=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, time_scale,
                         device, dtype)
        self.bn = nn.BatchNorm1d(input_size + 1, eps=1e-4, momentum=0.1, device=device,
                                 dtype=dtype)

    def features(self, xin: Tensor, lengths: Tensor | None) -> Tensor:
        B, T, F = xin.shape
        if lengths is None:
            return self.bn(xin.reshape(B * T, F)).reshape(B, T, F)
        mask = valid_mask(lengths.to(xin.device), T)  # normalise the valid steps; padding unread
        return xin.masked_scatter(mask.unsqueeze(-1), self.bn(xin[mask]))
