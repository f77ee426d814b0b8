"""Every paper artifact (figure or table) declared once, as data.

An artifact is a dataset, a grid of variants (models and their settings) x conditions x seeds,
the metric it reports, and scale presets: ``smoke`` (seconds, for tests), ``quick`` (a CPU in
minutes), ``paper`` (the authors' settings, ``reference_numbers.md``). ``train``, ``eval``,
``plot`` and ``reproduce`` all read these declarations.
"""

from .artifact import (
                       ONE,
                       SMOKE,
                       THREE_MODELS,
                       TWO_MODELS,
                       Artifact,
                       Cell,
                       Choice,
                       Overrides,
                       Scale,
                       merged,
                       stand_in,
)
from .audio_visual import FIG6C, GRID_BASE, GRID_NOTES, GRID_PROTOCOL
from .catalogue import (
                       ARTIFACTS,
                       SCALES,
                       all_scales,
                       check_scale,
                       default_artifact,
                       get_artifact,
                       labels_for,
                       variant_overrides,
)
from .events import NMNIST_BASE, TABLE1
from .frequency import FIG3D, FIG4A, FIG4A_PROTOCOL, FREQ_PROTOCOL, LSTM_T100

__all__ = ["ARTIFACTS", "FIG3D", "FIG4A", "FIG4A_PROTOCOL", "FIG6C", "FREQ_PROTOCOL",
           "GRID_BASE", "GRID_NOTES", "GRID_PROTOCOL", "LSTM_T100", "NMNIST_BASE", "ONE",
           "SCALES", "SMOKE", "TABLE1", "THREE_MODELS", "TWO_MODELS", "Artifact", "Cell",
           "Choice", "Overrides", "Scale", "all_scales", "check_scale", "default_artifact",
           "get_artifact", "labels_for", "merged", "stand_in", "variant_overrides"]
