"""Recurrent cells: the Phased LSTM / GRU and the baselines, all with forward(x, t, ...)."""

from .baselines import LSTM, InputBNLSTM
from .bn_lstm import BNLSTM
from .functional import time_gate
from .phased_lstm import PhasedGRU, PhasedLSTM
from .sparse import count_updates, sparse_forward

__all__ = ["BNLSTM", "LSTM", "InputBNLSTM", "PhasedGRU", "PhasedLSTM", "count_updates", "sparse_forward",
           "time_gate"]
