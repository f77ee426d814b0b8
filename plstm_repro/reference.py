"""The paper's numbers (and the seed repository's), as data, each with its source.

These are the targets that the plots show beside the project's own measurements; nothing here is an
output of this code. Sources are named as in ``/work/shared/paper/reference_numbers.md``:

- the paper: Neil, Pfeiffer, Liu, "Phased LSTM", NIPS 2016 (arXiv:1610.09513);
- the authors' public code: github.com/dannyneil/public_plstm (``A_Freq_Task.ipynb``);
- the seed repository: github.com/philipperemy/tensorflow-phased-lstm (its README and plots).

``paper_values(artifact_id)`` returns a :class:`PaperReference`: the numbers keyed by
``(variant, condition)`` with the labels of :mod:`plstm_repro.experiments`, plus the paper's
qualitative statements where it gives no numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAPER = "Neil, Pfeiffer, Liu, Phased LSTM, NIPS 2016"
NOTEBOOK = ("authors' notebook dannyneil/public_plstm A_Freq_Task.ipynb (cell output, "
            "commit 3abf8de)")
SEED = "seed repository philipperemy/tensorflow-phased-lstm, README"


@dataclass(frozen=True)
class PaperValue:
    """One number from a source: ``mean`` (± ``std``), or a range ``low``..``high``.

    ``approx`` marks a value read off a plot rather than printed as a number.
    """

    mean: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None
    approx: bool = False
    unit: str = "%"
    source: str = ""

    def format(self, digits: int = 2) -> str:
        if self.mean is None and self.low is not None:
            text = f"{self.low:g}-{self.high:g}"
        elif self.mean is None:
            return "-"
        else:
            text = f"{self.mean:.{digits}f}"
            if self.std is not None:
                text += f" ± {self.std:.{digits}f}"
        if self.approx:
            text = "≈ " + text
        return text + (f" {self.unit}" if self.unit and self.unit != "%" else "")


@dataclass(frozen=True)
class PaperReference:
    """What the paper (or seed) reports for one artifact."""

    artifact_id: str
    source: str
    quantity: str  # what the numbers measure, e.g. "test accuracy at epoch 70 (%)"
    values: dict[tuple[str, str], PaperValue] = field(default_factory=dict)
    statements: tuple[str, ...] = ()
    note: str = ""

    @property
    def has_numbers(self) -> bool:
        return bool(self.values)

    def get(self, variant: str, condition: str) -> PaperValue | None:
        return self.values.get((variant, condition))


def _fig3d() -> PaperReference:
    # Rows: condition; columns: Phased LSTM, BN-LSTM, LSTM. np.mean / np.std (ddof=0) over 5 seeds
    # of val_acc at index 69 (epoch 70), as printed by the notebook. The paper plots these as bars.
    means = {"standard": (99.2578125, 98.9453125, 89.3359375),
             "highres": (99.609375, 62.3828125, 51.71875),
             "async": (97.890625, 74.296875, 69.0234375)}
    stds = {"standard": (0.22777156, 0.38273277, 18.89010157),
            "highres": (0.27621359, 18.63350857, 0.71389324),
            "async": (0.57143511, 17.72835112, 13.33319346)}
    src = f"{NOTEBOOK}; plotted in {PAPER}, Fig. 3d"
    values = {}
    for cond, row in means.items():
        for model, m, s in zip(("Phased LSTM", "BN-LSTM", "LSTM"), row, stds[cond]):
            values[(model, cond)] = PaperValue(mean=m, std=s, source=src)
    return PaperReference(
        "fig3d", src, "test accuracy at epoch 70 (%), mean ± std (numpy, ddof=0) over 5 seeds",
        values,
        statements=(
            ("All three networks excel under standard sampling; 10x oversampling drops LSTM and "
            "BN-LSTM to near chance while Phased LSTM improves; asynchronous sampling is hard for "
            "LSTM and BN-LSTM but not for Phased LSTM (paper, section 3.1)."),
        ),
        note="reference_numbers.md lists the BN-LSTM and LSTM means only; their stds here are "
             "the notebook's printed output.",
    )


def _fig4a() -> PaperReference:
    return PaperReference(
        "fig4a", f"{PAPER}, Fig. 4a and its caption",
        "test accuracy over 300 epochs (%), mean with min-max shading over 5 seeds",
        statements=(
            ("The Phased LSTM outperforms both LSTM and BN-LSTM while exhibiting lower variance "
            "(Fig. 4a caption)."),
            ("Fig. 4a demonstrates how quickly the Phased LSTM converges to the correct solution "
            "compared to the standard approaches (section 3.1)."),
        ),
        note="The paper gives no numbers for Fig. 4a (only a plot whose accuracy axis spans "
             "45-90 %); nothing numeric to compare.",
    )


def _fig4b() -> PaperReference:
    return PaperReference(
        "fig4b", f"{PAPER}, Fig. 4b and section 3.2",
        "test MSE over 100 epochs (log scale, 1e-5 .. 1)",
        statements=(
            "Longer periods accelerate learning convergence (Fig. 4b caption).",
            ("The results in Fig. 4b show longer tau accelerates training of the network to learn "
            "much longer sequences faster (section 3.2)."),
        ),
        note="The paper gives no numbers for Fig. 4b (only a plot); nothing numeric to compare.",
    )


def _table1() -> PaperReference:
    src = f"{PAPER}, Table 1"
    rows = {"epoch 1": ((73.81, 3.5), (40.87, 13.3), (90.32, 2.3)),
            "rho 0.75": ((95.02, 0.3), (96.93, 0.12), (97.28, 0.1)),
            "test rho 0.4": ((90.67, 0.3), (94.79, 0.03), (95.11, 0.2)),
            "test rho 1.0": ((94.99, 0.3), (96.55, 0.63), (97.27, 0.1))}
    values = {}
    for cond, row in rows.items():
        for model, (m, s) in zip(("CNN", "BN-LSTM", "Phased LSTM"), row):
            values[(model, cond)] = PaperValue(mean=m, std=s, source=src)
    values[("BN-LSTM", "LSTM updates")] = PaperValue(mean=3153, unit="per neuron", source=src)
    values[("Phased LSTM", "LSTM updates")] = PaperValue(mean=159, std=2.8, unit="per neuron",
                                                         source=src)
    return PaperReference(
        "table1", src, "N-MNIST test accuracy (%); rho = probability an event is kept "
        "(trained at 0.75); Phased LSTM with tau = 100 ms", values)


def _grid() -> PaperReference:
    src = f"{PAPER}, section 3.4 (Fig. 6c)"
    return PaperReference(
        "fig6c", src, "GRID lip reading, video-only evaluation: peak word accuracy (%)",
        {("Phased LSTM", "video only"): PaperValue(mean=81.15, source=src)},
        statements=(("The Phased LSTM again converges substantially faster than both LSTM and "
                    "batch-normalized LSTM (section 3.4)."),
                    ("During evaluation, all networks achieve greater than 98% accuracy on "
                     "audio-only and combined audio-video inputs; video-only evaluation proved "
                     "the most challenging (section 3.4)."),
                    ("Peak accuracy 81.15% (video only), compared with Wand et al. 2016 "
                     "(section 3.4)."),))


def _mnist() -> PaperReference:
    src = f"{SEED} and its plots fig/mnist_acc.png, fig/mnist_ce.png"
    return PaperReference(
        "mnist", src, "training accuracy (%) at about 2000 steps of batch 256, 32 cells",
        {("Phased LSTM", "default"): PaperValue(mean=90.0, approx=True, source=src),
         ("LSTM", "default"): PaperValue(low=10.0, high=40.0, approx=True, source=src)},
        statements=(
            ("\"Clearly with 32 cells, the Basic LSTM implementation cannot learn whereas Phased "
            "LSTM does pretty well\" (seed README)."),
            ("Speed: \"0.8 seconds for a forward-backward pass on a Titan X Maxwell GPU\" (seed "
            "README; batch 256, 784 steps, 32 units)."),
        ),
        note="Values read off the seed's plots (0.9 and 0.1-0.4 on its 0-1 axis), not printed "
             "numbers.")


def _digits() -> PaperReference:
    return PaperReference(
        "digits", "none: offline stand-in (scikit-learn 8x8 digits) for the seed's MNIST",
        "training accuracy (%)",
        statements=(("No paper or seed number exists for this dataset; compare only the "
                    "qualitative outcome of the seed's MNIST run (Phased LSTM learns, LSTM with "
                    "32 cells barely does)."),),
        note="Offline stand-in: no reference number.")


def _synthetic(artifact_id: str, what: str, looks: str) -> PaperReference:
    return PaperReference(
        artifact_id, f"none: SYNTHETIC stand-in for {what}", "test accuracy (%), test loss",
        statements=((f"No paper number exists for this dataset and none is shown beside it; "
                     f"the qualitative picture ({looks}) can be looked at, not compared."),),
        note="Synthetic data: never part of the paper's tables or figures.")


def _fig2b() -> PaperReference:
    return PaperReference(
        "fig2b", f"{PAPER}, Fig. 2b caption", "illustration (no numbers)",
        statements=(
            ("A simple linearly increasing function is used as an input. The time gate k_t of each "
            "neuron has a different tau, identical phase shift s, and an open ratio r_on of 0.05. "
            "The input flows through the time gate k_t to be held as the new cell state c_t only "
            "when k_t is open (Fig. 2b caption)."),
        ))


_BUILDERS = {"fig3d": _fig3d, "fig4a": _fig4a, "fig4b": _fig4b, "table1": _table1,
             "fig6c": _grid, "grid": _grid, "mnist": _mnist, "digits": _digits, "fig2b": _fig2b,
             "nmnist-synthetic": lambda: _synthetic(
                 "nmnist-synthetic", "N-MNIST (scikit-learn digits through a simulated event "
                 "sensor)", "Phased LSTM learns fastest, RNNs degrade less than the CNN when rho "
                 "changes, ~20x fewer updates"),
             "fig6c-synthetic": lambda: _synthetic(
                 "fig6c-synthetic", "GRID (each word its own audio signature and mouth motion)",
                 "audio easy, video hard, Phased LSTM converging fastest")}


def paper_values(artifact_id: str) -> PaperReference:
    """The reference values for an artifact id (as in ``experiments.ARTIFACTS``, plus ``table1``
    and ``fig6c``/``grid`` for N-MNIST and GRID)."""
    if artifact_id not in _BUILDERS:
        raise ValueError(f"reference: no paper values for {artifact_id!r}; known: "
                         f"{', '.join(_BUILDERS)}")
    return _BUILDERS[artifact_id]()
