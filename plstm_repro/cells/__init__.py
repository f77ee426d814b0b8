"""Recurrent cells: the Phased LSTM / GRU and the baselines, all with forward(x, t, ...)."""

from .baselines import LSTM, InputBNLSTM
from .bn_lstm import BNLSTM
from .functional import time_gate
from .phased_lstm import PhasedGRU, PhasedLSTM
from .sparse import count_updates, sparse_forward

# model.bn -> the BN-LSTM it names: Cooijmans et al.'s recurrent batch norm, or the authors'
# layer that normalises the inputs (one table for the sequence models and GRID's network)
BN_LSTMS = {"recurrent": BNLSTM, "input": InputBNLSTM}

__all__ = ["BNLSTM", "BN_LSTMS", "LSTM", "InputBNLSTM", "PhasedGRU", "PhasedLSTM", "count_updates", "sparse_forward",
           "time_gate"]
