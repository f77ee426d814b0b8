"""Model zoo: ``build_model(name, **config)`` for every model of the paper's experiments."""

from __future__ import annotations

from torch import nn

from .cnn import EventFrameCNN, FrameCNN, GridVideoFrontEnd
from .sequence import SequenceModel

# What users type -> registry name.
ALIASES = {"phased": "phased_lstm", "plstm": "phased_lstm", "bn": "bn_lstm", "pgru": "phased_gru"}
MODELS = ("lstm", "bn_lstm", "phased_lstm", "phased_gru", "cnn")


def resolve_model_name(name: str) -> str:
    """Canonical model name; ValueError listing the valid names (and aliases) otherwise."""
    canon = ALIASES.get(name, name)
    if canon not in MODELS:
        aliases = ", ".join(f"{a} = {c}" for a, c in ALIASES.items())
        raise ValueError(f"model: unknown name {name!r}; valid: {', '.join(MODELS)} "
                         f"(aliases: {aliases})")
    return canon


def build_model(name: str, input_size: int = 1, num_outputs: int = 2, hidden_size: int = 110,
                num_layers: int = 1, readout: str = "last", embed: tuple[int, int] | None = None,
                **rnn_kwargs) -> nn.Module:
    """Build a model by name. Recurrent models are wrapped in a SequenceModel whose rnn gets
    ``input_size`` features (after the embedding, if any) plus ``rnn_kwargs``; ``cnn`` is the
    N-MNIST frame CNN on events (:class:`EventFrameCNN`) and takes its own keyword arguments;
    ``grid_fusion`` is GRID's audio-visual network (:class:`~.grid.GridFusion`, ``cell=...``).
    """
    from ..cells import BNLSTM, LSTM, PhasedGRU, PhasedLSTM

    if name == "grid_fusion":
        from .grid import GridFusion
        return GridFusion(num_outputs=num_outputs, **rnn_kwargs)
    name = resolve_model_name(name)
    if name == "cnn":
        return EventFrameCNN(num_outputs=num_outputs, **rnn_kwargs)
    cls = {"lstm": LSTM, "bn_lstm": BNLSTM, "phased_lstm": PhasedLSTM, "phased_gru": PhasedGRU}
    fin = input_size if embed is None else input_size - 1 + embed[1]
    rnn = cls[name](fin, hidden_size, num_layers=num_layers, **rnn_kwargs)
    return SequenceModel(rnn, num_outputs, readout=readout, embed=embed)


__all__ = [
    "ALIASES",
    "MODELS",
    "EventFrameCNN",
    "FrameCNN",
    "GridVideoFrontEnd",
    "SequenceModel",
    "build_model",
    "resolve_model_name",
]
