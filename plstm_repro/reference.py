"""The paper's numbers (and the seed repository's), as data, each with its source.

These are the targets that the plots show beside the project's own measurements; nothing here is an
output of this code. Sources are named as in ``/work/shared/paper/reference_numbers.md``:

- the paper: Neil, Pfeiffer, Liu, "Phased LSTM", NIPS 2016 (arXiv:1610.09513);
- the authors' public code: github.com/dannyneil/public_plstm (``A_Freq_Task.ipynb``);
- the seed repository: github.com/philipperemy/tensorflow-phased-lstm (its README and plots).

``paper_values(artifact_id)`` returns a :class:`PaperReference`: the numbers keyed by
``(variant, condition)`` with the labels of :mod:`plstm_repro.experiments`, the paper's
qualitative statements, and those statements as claims that ``plstm report`` checks on tracked
runs (:mod:`plstm_repro.claims`; labels again those of the artifact's declaration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .claims import Claim, Compare, Const, Diff, Q, Ratio, beats, degrades_less, ordered

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
    claims: tuple[Claim, ...] = ()  # the statements as predicates over tracked results

    @property
    def has_numbers(self) -> bool:
        return bool(self.values)

    def get(self, variant: str, condition: str) -> PaperValue | None:
        return self.values.get((variant, condition))


_SAMPLING = ("standard", "highres", "async")  # fig3d's condition labels
FIG4B_TAU = ((0, 2), (2, 4), (4, 6), (6, 8))  # fig4b's tau ranges, exp(U(a, b))


def fig4b_label(a: float, b: float) -> str:
    return f"PLSTM (tau ~ e^U({a:g},{b:g}))"


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
        claims=(
            Claim("fig3d-best", "Phased LSTM is at least as accurate as BN-LSTM and LSTM in "
                  "every sampling condition.", f"{PAPER}, Fig. 3d and section 3.1",
                  beats("Phased LSTM", ["BN-LSTM", "LSTM"], "test_acc", list(_SAMPLING)),
                  "test accuracy at the last epoch, mean over seeds, per condition"),
            Claim("fig3d-highres", "With 10x oversampling (high resolution) the Phased LSTM "
                  "improves.", f"{PAPER}, section 3.1",
                  (Compare(Q("Phased LSTM", "test_acc", "highres"), ">",
                           Q("Phased LSTM", "test_acc", "standard")),),
                  "Phased LSTM's test accuracy at the last epoch: higher at high resolution "
                  "than at standard sampling"),
            Claim("fig3d-async", "Asynchronous sampling is hard for LSTM and BN-LSTM but not "
                  "for Phased LSTM.", f"{PAPER}, section 3.1",
                  degrades_less(["Phased LSTM"], "BN-LSTM", "test_acc", "standard", "async")
                  + degrades_less(["Phased LSTM"], "LSTM", "test_acc", "standard", "async"),
                  "the drop in test accuracy from standard to asynchronous sampling: Phased "
                  "LSTM's is smaller than each baseline's"),
        ),
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
        claims=(
            Claim("fig4a-best", "The Phased LSTM outperforms both LSTM and BN-LSTM.",
                  f"{PAPER}, Fig. 4a caption",
                  beats("Phased LSTM", ["BN-LSTM", "LSTM"], "test_acc", [None], strict=True),
                  "test accuracy at the last epoch, mean over seeds: Phased LSTM's above "
                  "each baseline's"),
            Claim("fig4a-variance", "... while exhibiting lower variance.",
                  f"{PAPER}, Fig. 4a caption",
                  tuple(Compare(Q("Phased LSTM", "test_acc", over_seeds="std"), "<=",
                                Q(o, "test_acc", over_seeds="std"))
                        for o in ("BN-LSTM", "LSTM")),
                  "std over seeds of the test accuracy at the last epoch", min_seeds=2),
            Claim("fig4a-faster", "The Phased LSTM converges to the correct solution more "
                  "quickly than the standard approaches.", f"{PAPER}, section 3.1",
                  beats("Phased LSTM", ["BN-LSTM", "LSTM"], "test_acc", [None], at="mean",
                        strict=True),
                  "mean test accuracy over all epochs (the area under the curve per epoch), "
                  "mean over seeds: Phased LSTM's above each baseline's"),
        ),
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
        claims=(
            Claim("fig4b-tau", "Longer periods accelerate learning convergence: longer tau "
                  "ranges reach a lower MSE sooner.", f"{PAPER}, Fig. 4b caption and section "
                  "3.2", ordered([fig4b_label(a, b) for a, b in reversed(FIG4B_TAU)],
                                 "test_mse", at="mean_log10"),
                  "mean over epochs of log10(test MSE) (the area under the log-scale curve): "
                  "ordered from the longest tau range (lowest) to the shortest"),
        ),
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
        "(trained at 0.75); Phased LSTM with tau = 100 ms", values,
        statements=(("Phased LSTM trains faster than alternative models and achieves much higher "
                     "accuracy with a lower variance even within the first epoch of training "
                     "(section 3.3)."),
                    ("When testing with rho = 0.4 and rho = 1.0 without retraining, both RNN "
                     "models perform well and greatly outperform the CNN (section 3.3)."),
                    ("Each neuron of the Phased LSTM only updates about 5% of the time: 159 "
                     "updates per neuron against 3153 for the BN-LSTM, an approximate twenty-fold "
                     "reduction in run time compute cost (section 3.3)."),),
        claims=_table1_claims(src))


def _table1_claims(src: str) -> tuple[Claim, ...]:
    rnns = ["Phased LSTM", "BN-LSTM"]
    return (
        Claim("table1-epoch1", "Phased LSTM trains faster: higher accuracy within the first "
              "epoch than BN-LSTM and the CNN.", f"{src}, row 'Accuracy at Epoch 1'",
              beats("Phased LSTM", ["BN-LSTM", "CNN"], "test_acc", [None], at="first",
                    strict=True),
              "test accuracy after epoch 1 (rho 0.75), mean over seeds"),
        Claim("table1-best", "Phased LSTM achieves slightly higher accuracy than the BN-LSTM "
              "(and the CNN) at rho 0.75.", f"{src}, row 'Train/test rho = 0.75'",
              beats("Phased LSTM", ["BN-LSTM", "CNN"], "test_acc", [None], strict=True),
              "test accuracy at the last epoch, rho 0.75"),
        Claim("table1-rho", "Both RNNs degrade less than the CNN from rho 0.75 to 0.4, and "
              "outperform it at rho 0.4 and 1.0.", f"{src}, rows 'Test with rho'",
              tuple(Compare(Diff(Q(v, "test_acc"), Q(v, "rho_0.4/test_acc")), "<",
                            Diff(Q("CNN", "test_acc"), Q("CNN", "rho_0.4/test_acc")))
                    for v in rnns)
              + beats("Phased LSTM", ["CNN"], "rho_0.4/test_acc", [None], strict=True)
              + beats("BN-LSTM", ["CNN"], "rho_0.4/test_acc", [None], strict=True)
              + beats("Phased LSTM", ["CNN"], "rho_1.0/test_acc", [None], strict=True)
              + beats("BN-LSTM", ["CNN"], "rho_1.0/test_acc", [None], strict=True),
              "drop in test accuracy from rho 0.75 (as trained) to 0.4, and accuracy at 0.4 "
              "and 1.0, at the last epoch"),
        Claim("table1-updates", "Phased LSTM needs ~20x fewer updates per neuron than "
              "BN-LSTM.", f"{src}, row 'LSTM Updates' and section 3.3",
              (Compare(Ratio(Q("BN-LSTM", "updates_per_neuron"),
                             Q("Phased LSTM", "updates_per_neuron")), ">=", Const(10)),),
              "updates per neuron per recording at the last epoch (rho 0.75): BN-LSTM's over "
              "Phased LSTM's at least 10 (paper: 3153 / 159 = 19.8)"),
    )


def _fig6c_claims(src: str) -> tuple[Claim, ...]:
    cells, res = ["Phased LSTM", "BN-LSTM", "LSTM"], ["low", "high"]
    return (
        Claim("fig6c-faster", "The Phased LSTM converges substantially faster than both LSTM "
              "and BN-LSTM (video-only test loss).", f"{src}, Fig. 6c",
              beats("Phased LSTM", ["BN-LSTM", "LSTM"], "video/test_loss", res, higher=False,
                    at="mean", strict=True),
              "mean video-only test loss over the epochs (the area under Fig. 6c's curve per "
              "epoch), per resolution: Phased LSTM's below each baseline's"),
        Claim("fig6c-audio", "All networks achieve greater than 98% accuracy on audio-only and "
              "combined audio-video inputs.", f"{src}",
              tuple(Compare(Q(v, m, c), ">", Const(98.0)) for v in cells for c in res
                    for m in ("audio/test_acc", "test_acc")),
              "word accuracy at the last epoch, audio only and both, every model and "
              "resolution"),
        Claim("fig6c-video-hardest", "Video-only evaluation proved the most challenging.",
              f"{src}",
              tuple(Compare(Q(v, "video/test_acc", c), "<", Q(v, "audio/test_acc", c))
                    for v in cells for c in res),
              "word accuracy at the last epoch: video only below audio only, every model and "
              "resolution"),
    )


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
                     "(section 3.4)."),),
        claims=_fig6c_claims(src))


def _learns(source: str) -> Claim:
    return Claim("seed-learns", "With 32 cells the basic LSTM cannot learn whereas Phased LSTM "
                 "does pretty well.", source,
                 beats("Phased LSTM", ["LSTM"], "step_train_acc", [None], at="tail:5",
                       strict=True),
                 "training accuracy at the end (mean of the last 5 logged batches), mean over "
                 "seeds: Phased LSTM above LSTM")


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
             "numbers.",
        claims=(_learns(SEED),))


def _digits() -> PaperReference:
    return PaperReference(
        "digits", "none: offline stand-in (scikit-learn 8x8 digits) for the seed's MNIST",
        "training accuracy (%)",
        statements=(("No paper or seed number exists for this dataset; compare only the "
                    "qualitative outcome of the seed's MNIST run (Phased LSTM learns, LSTM with "
                    "32 cells barely does)."),),
        note="Offline stand-in: no reference number.",
        claims=(_learns(f"{SEED} (applied to the offline stand-in)"),))


def _synthetic(artifact_id: str, what: str, looks: str,
               claims: tuple[Claim, ...] = ()) -> PaperReference:
    """A stand-in's reference: no numbers; the paper's qualitative claims, evaluated on the
    synthetic runs, say how the stand-in behaves (they are not evidence about the paper)."""
    return PaperReference(
        artifact_id, f"none: SYNTHETIC stand-in for {what}", "test accuracy (%), test loss",
        statements=((f"No paper number exists for this dataset and none is shown beside it; "
                     f"the qualitative picture ({looks}) can be looked at, not compared."),),
        note="Synthetic data: never part of the paper's tables or figures.", claims=claims)


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
                 "changes, ~20x fewer updates", _table1_claims("synthetic stand-in of Table 1")),
             "fig6c-synthetic": lambda: _synthetic(
                 "fig6c-synthetic", "GRID (each word its own audio signature and mouth motion)",
                 "audio easy, video hard, Phased LSTM converging fastest",
                 _fig6c_claims("synthetic stand-in of Fig. 6c"))}


def paper_values(artifact_id: str) -> PaperReference:
    """The reference values for an artifact id (as in ``experiments.ARTIFACTS``, plus ``table1``
    and ``fig6c``/``grid`` for N-MNIST and GRID)."""
    if artifact_id not in _BUILDERS:
        raise ValueError(f"reference: no paper values for {artifact_id!r}; known: "
                         f"{', '.join(_BUILDERS)}")
    return _BUILDERS[artifact_id]()
