"""Model zoo: ``build_model(name, **config)`` for every model of the paper's experiments."""

from __future__ import annotations

import torch
from torch import nn

from ..config_fields import ALIASES, MODELS  # the names and the fields each model uses
from ..errors import ConfigError
from .cnn import EventFrameCNN, FrameCNN, GridVideoFrontEnd
from .sequence import SequenceModel


def resolve_model_name(name: str) -> str:
    """Canonical model name; ConfigError listing the valid names (and aliases) otherwise."""
    canon = ALIASES.get(name, name)
    if canon not in MODELS:
        aliases = ", ".join(f"{a} = {c}" for a, c in ALIASES.items())
        raise ConfigError(f"model: unknown name {name!r}; valid: {', '.join(MODELS)} "
                          f"(aliases: {aliases})")
    return canon


def build_model(name: str, input_size: int = 1, num_outputs: int = 2, hidden_size: int = 110,
                num_layers: int = 1, readout: str = "last", embed: tuple[int, int] | None = None,
                head: str = "linear", bn: str = "recurrent", **rnn_kwargs) -> nn.Module:
    """Build a model by name. Recurrent models are wrapped in a SequenceModel whose rnn gets
    ``input_size`` features (after the embedding, if any) plus ``rnn_kwargs``; ``cnn`` is the
    N-MNIST frame CNN on events (:class:`EventFrameCNN`) and takes its own keyword arguments;
    ``grid_fusion`` is GRID's audio-visual network (:class:`~.av_fusion.AudioVisualFusion`, ``cell=...``).
    ``bn="input"`` makes ``bn_lstm`` the authors' input-normalised LSTM (:class:`InputBNLSTM`).
    """
    from ..cells import BN_LSTMS, LSTM, PhasedGRU, PhasedLSTM

    if name == "grid_fusion":
        from .av_fusion import AudioVisualFusion
        return AudioVisualFusion(num_outputs=num_outputs, bn=bn, **rnn_kwargs)
    name = resolve_model_name(name)
    if name == "cnn":
        return EventFrameCNN(num_outputs=num_outputs, **rnn_kwargs)
    if bn not in BN_LSTMS:
        raise ConfigError(f"model.bn: expected recurrent or input, got {bn!r}")
    cls = {"lstm": LSTM, "bn_lstm": BN_LSTMS[bn],
           "phased_lstm": PhasedLSTM, "phased_gru": PhasedGRU}
    fin = input_size if embed is None else input_size - 1 + embed[1]
    rnn = cls[name](fin, hidden_size, num_layers=num_layers, **rnn_kwargs)
    return SequenceModel(rnn, num_outputs, readout=readout, embed=embed, head=head)


@torch.no_grad()
def authors_init(model: SequenceModel) -> SequenceModel:
    """Re-initialise an LSTM-family model as the authors' lasagne layers start (freq_task.py):
    every input and recurrent weight ~ N(0, 0.1) (lasagne's Gate default), input-gate bias -0.1,
    forget-gate and other biases 0; the dense layer Glorot-uniform with bias 0 (DenseLayer's
    defaults). Time-gate parameters and batch-norm statistics are left as they are."""
    rnn = model.rnn
    if not any(n.startswith("weight_ih") for n, _ in _lstm_params(rnn)):
        raise ConfigError("model.init=authors: only the LSTM-family models (lstm, phased_lstm, "
                          "bn_lstm with model.bn=input) have the authors' initialisation")
    H = rnn.hidden_size
    for name, p in _lstm_params(rnn):
        if name.startswith(("weight_ih", "weight_hh")):
            p.normal_(0.0, 0.1)
        elif name.startswith("bias_ih"):
            p.zero_()
            p[:H] = -0.1  # gate order i, f, g, o
        elif name.startswith("bias_hh"):
            p.zero_()
        elif name.startswith("weight_c"):  # peepholes: lasagne's W_cell N(0, 0.1)
            p.normal_(0.0, 0.1)
    nn.init.xavier_uniform_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    return model


def _lstm_params(rnn: nn.Module):
    """(name, parameter) of the gate weights: the PhasedLSTM's own, or the nn.LSTM inside."""
    inner = getattr(rnn, "lstm", None)
    if isinstance(inner, nn.LSTM):
        return list(inner.named_parameters())
    if getattr(rnn, "_gates", 4) != 4:  # the Phased GRU: no input gate
        return []
    return [(n, p) for n, p in rnn.named_parameters() if n.startswith(("weight", "bias"))]


__all__ = [
    "ALIASES",
    "MODELS",
    "EventFrameCNN",
    "FrameCNN",
    "GridVideoFrontEnd",
    "SequenceModel",
    "authors_init",
    "build_model",
    "resolve_model_name",
]
