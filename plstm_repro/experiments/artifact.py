"""What an artifact is: a grid of variants (Cell) x conditions x seeds with scale presets
(Scale), the protocol choices where the paper's text is silent or differs from the authors'
code (Choice), and the pieces every artifact shares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import RunConfig, apply_overrides
from ..config_fields import owned

Overrides = dict[str, object]


@dataclass(frozen=True)
class Cell:
    """A variant or a condition: a label and the overrides it applies."""

    label: str
    overrides: Overrides = field(default_factory=dict)


@dataclass(frozen=True)
class Scale:
    seeds: int
    overrides: Overrides = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Choice:
    """One setting where the paper's text is silent or differs from the authors' code: what it
    is, its overrides, the line of their code it comes from, and the text's reading of it."""

    what: str
    overrides: Overrides
    source: str  # file:line in dannyneil/public_plstm at commit 3abf8de, or why (no such code)
    text: Overrides = field(default_factory=dict)  # the text-only reading (empty: same)

    def cited(self) -> str:
        return f"{self.what} [{self.source}]"


def merged(choices: tuple[Choice, ...], reading: str = "authors") -> Overrides:
    """The overrides of a protocol: the authors' code's, or the text's reading of each choice."""
    out: Overrides = {}
    for c in choices:
        out.update(c.overrides if reading == "authors" else c.text)
    return out


@dataclass(frozen=True)
class Artifact:
    id: str
    paper_ref: str
    title: str
    dataset: str
    variants: tuple[Cell, ...]
    conditions: tuple[Cell, ...]
    metric: str  # the tracked metric the figure reports: test_acc | test_mse | train_acc
    plot: str  # name of the function in plstm_repro.results.plots
    scales: dict[str, Scale]
    # settings shared by the variants; each variant gets those its model and dataset use
    # (plstm_repro.config_fields), as it gets those of the scale's preset
    base: Overrides = field(default_factory=dict)
    # where our settings differ from the paper's at every scale (a scale's own differences are
    # in its note); the report shows both beside the results
    deviations: tuple[str, ...] = ()
    # Test-time conditions: every trained model is also evaluated (each epoch, no retraining)
    # on the test split under these data.* overrides, logged as "<label>/<metric>".
    evaluations: tuple[Cell, ...] = ()
    synthetic: bool = False  # a stand-in dataset: results never compared with the paper's
    notes: tuple[str, ...] = ()  # how the paper was read where it is silent or ambiguous
    # the authors' code's choices this artifact follows (in ``base``), each with its source;
    # the ``*-text`` scales run the text's reading instead
    protocol: tuple[Choice, ...] = ()
    protocol_from: str = "the authors' code (dannyneil/public_plstm at 3abf8de)"

    def config(self, scale: str, extra: Overrides | None = None) -> RunConfig:
        """The artifact's dataset and base settings, then ``extra``, then the scale's preset.
        The base and the scale's preset are shared by every variant: each config gets only
        those of their fields its model and dataset use (Table 1's CNN no hidden size, the
        LSTM no time-gate settings); ``extra`` (a variant's and a condition's own) all."""
        extra = extra or {}
        shared = {**self.base, **self.scales[scale].overrides}
        chosen = {"data.name": self.dataset, **shared, **extra}
        model = str(chosen.get("model.name", RunConfig().model.name))
        dataset = str(chosen["data.name"])
        base = {k: v for k, v in self.base.items() if owned(k, dataset, model)}
        preset = {k: v for k, v in self.scales[scale].overrides.items()
                  if owned(k, dataset, model)}
        return apply_overrides(RunConfig(), {"data.name": self.dataset, **base, **extra,
                                             **preset})

    def runs(self, scale: str) -> list[tuple[Cell, Cell, int, RunConfig]]:
        """Every run the artifact needs at ``scale``: (variant, condition, seed, config)."""
        return [(var, cond, seed,
                 self.config(scale, {**var.overrides, **cond.overrides, "seed": seed}))
                for cond in self.conditions for var in self.variants
                for seed in range(self.scales[scale].seeds)]


THREE_MODELS = (
    Cell("Phased LSTM", {"model.name": "phased_lstm"}),
    Cell("BN-LSTM", {"model.name": "bn_lstm"}),
    Cell("LSTM", {"model.name": "lstm"}),
)
TWO_MODELS = THREE_MODELS[0::2]  # Phased LSTM and LSTM, as in the seed repository
ONE = (Cell("default"),)


def without_sizes(overrides: Overrides) -> Overrides:
    return {k: v for k, v in overrides.items() if k not in ("data.n_train", "data.n_test")}


SMOKE = Scale(1, {"data.n_train": 48, "data.n_test": 24, "train.epochs": 1,
                  "model.hidden_size": 8, "train.batch_size": 16}, "seconds, for tests")


def stand_in(real: Artifact, id: str, dataset: str, what: str,
             scales: dict[str, Scale]) -> Artifact:
    """A paper artifact's grid on a synthetic stand-in dataset: labelled SYNTHETIC, never
    compared with the paper's numbers."""
    return dataclasses.replace(
        real, id=id, dataset=dataset, synthetic=True, scales=scales,
        paper_ref=f"none: SYNTHETIC stand-in for {what}; not {real.paper_ref}",
        title=f"SYNTHETIC data, not {what.split(' (')[0]}: {real.paper_ref}'s models and "
              "conditions")
