"""Recurrent cells: the Phased LSTM / GRU and the baselines, all with forward(x, t, ...)."""

from .baselines import BNLSTM, LSTM
from .functional import time_gate
from .phased_lstm import PhasedGRU, PhasedLSTM

__all__ = ["BNLSTM", "LSTM", "PhasedGRU", "PhasedLSTM", "time_gate"]
