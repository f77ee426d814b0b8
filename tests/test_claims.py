"""Claims: verdicts that follow from the numbers, and declarations that match their artifacts.

The histories here are FAKE, made up in the test only to exercise the predicates; they are not
results of any run and say nothing about the models.
"""

import pandas as pd
import pytest

from plstm_repro.claims import (
    FAILS,
    HOLDS,
    NOT_ENOUGH,
    Claim,
    Compare,
    Const,
    Diff,
    Q,
    Ratio,
    beats,
    degrades_less,
    ordered,
)
from plstm_repro.experiments import ARTIFACTS
from plstm_repro.reference import paper_values

COLUMNS = ["run_id", "variant", "condition", "seed", "metric", "step", "value"]


def history(rows):
    """rows: (variant, condition, seed, metric, [values per step])."""
    out = []
    for var, cond, seed, metric, values in rows:
        for step, v in enumerate(values, start=1):
            out.append((f"{var}-{cond}-{seed}", var, cond, seed, metric, step, v))
    return pd.DataFrame(out, columns=COLUMNS)


def test_a_claim_holds_fails_or_lacks_runs_from_the_numbers_shown():
    h = history([("A", "x", 0, "acc", [50, 90]), ("A", "x", 1, "acc", [60, 80]),
                 ("B", "x", 0, "acc", [70, 84]), ("B", "x", 1, "acc", [70, 88])])
    best = Claim("c", "A beats B", "fake", beats("A", ["B"], "acc", ["x"]))
    v = best.evaluate(h)  # A: mean of last = 85; B: 86
    assert v.verdict == FAILS
    assert v.checks == ["A acc [x] = 85 ≥ B acc [x] = 86: no"]
    assert v.numbers["A acc [x]"] == (85.0, [0, 1]) and v.seeds == [0, 1]
    first = Claim("c", "A starts lower", "fake",
                  (Compare(Q("A", "acc", "x", at="first"), "<", Q("B", "acc", "x", "first")),))
    assert first.evaluate(h).verdict == HOLDS  # 55 < 70
    area = Claim("c", "A is ahead on average", "fake",
                 beats("A", ["B"], "acc", ["x"], at="mean", strict=True))
    assert area.evaluate(h).verdict == FAILS  # 70 vs 78
    spread = Claim("c", "A varies less", "fake",
                   (Compare(Q("A", "acc", "x", over_seeds="std"), "<=",
                            Q("B", "acc", "x", over_seeds="std")),), min_seeds=2)
    assert spread.evaluate(h).verdict == FAILS  # std 5 vs 2
    missing = Claim("c", "A beats C", "fake", beats("A", ["C"], "acc", ["x"]))
    v = missing.evaluate(h)
    assert v.verdict == NOT_ENOUGH and v.missing == ["C acc [x]: 0 seed(s), 1 needed"]
    assert spread.evaluate(h[h["seed"] == 0]).verdict == NOT_ENOUGH  # std needs 2 seeds


def test_table1_claims_plug_in_as_data():
    """Table 1's claims as they can be declared: its test-time conditions are logged as
    metrics ``rho_0.4/test_acc`` of the same runs (condition "default")."""
    h = history([("Phased LSTM", "default", 0, "test_acc", [97.3]),
                 ("Phased LSTM", "default", 0, "rho_0.4/test_acc", [95.1]),
                 ("BN-LSTM", "default", 0, "test_acc", [96.9]),
                 ("BN-LSTM", "default", 0, "rho_0.4/test_acc", [94.8]),
                 ("CNN", "default", 0, "test_acc", [95.0]),
                 ("CNN", "default", 0, "rho_0.4/test_acc", [90.7]),
                 ("Phased LSTM", "default", 0, "updates_per_neuron", [159.0]),
                 ("BN-LSTM", "default", 0, "updates_per_neuron", [3153.0])])
    fewer = Claim("t1-updates", "Phased LSTM needs ~20x fewer updates per neuron than BN-LSTM",
                  "fake", (Compare(Ratio(Q("BN-LSTM", "updates_per_neuron"),
                                         Q("Phased LSTM", "updates_per_neuron")),
                                   ">=", Const(10)),))
    v = fewer.evaluate(h)
    assert v.verdict == HOLDS and "= 19.83 ≥ 10: yes" in v.checks[0]
    robust = Claim("t1-rho", "RNNs degrade less than the CNN from rho 0.75 to 0.4", "fake",
                   tuple(Compare(Diff(Q(v, "test_acc"), Q(v, "rho_0.4/test_acc")), "<=",
                                 Diff(Q("CNN", "test_acc"), Q("CNN", "rho_0.4/test_acc")))
                         for v in ("Phased LSTM", "BN-LSTM")))
    assert robust.evaluate(h).verdict == HOLDS  # drops 2.2 and 2.1 vs 4.3
    worse = h.copy()
    worse.loc[(worse["variant"] == "BN-LSTM") & (worse["metric"] == "rho_0.4/test_acc"),
              "value"] = 80.0
    assert robust.evaluate(worse).verdict == FAILS
    # the same shape between conditions (labels of an artifact's condition axis)
    by_cond = history([(v, c, 0, "acc", [a]) for v, c, a in
                       (("R", "x", 90), ("R", "y", 85), ("C", "x", 90), ("C", "y", 70))])
    assert Claim("c", "", "", degrades_less(["R"], "C", "acc", "x", "y")) \
        .evaluate(by_cond).verdict == HOLDS


def test_ordered_chains_and_bad_comparisons():
    h = history([(v, "d", 0, "mse", vals) for v, vals in
                 (("long", [1e-1, 1e-4]), ("mid", [1e-1, 1e-3]), ("short", [1e-1, 1e-2]))])
    chain = Claim("c", "longer is faster", "fake", ordered(["long", "mid", "short"], "mse",
                                                           at="mean_log10"))
    assert chain.evaluate(h).verdict == HOLDS
    assert Claim("c", "", "", ordered(["short", "long"], "mse", at="mean_log10")) \
        .evaluate(h).verdict == FAILS
    with pytest.raises(ValueError, match="unknown comparison"):
        Compare(Const(1), "=>", Const(2))


def test_the_paper_artifacts_declare_claims():
    for aid in ("fig3d", "fig4a", "fig4b", "mnist", "digits"):
        assert paper_values(aid).claims, aid


@pytest.mark.parametrize("aid", [a for a in ARTIFACTS if ARTIFACTS[a].variants])
def test_declared_claims_name_their_artifacts_labels(aid):
    art = ARTIFACTS[aid]
    variants = {v.label for v in art.variants}
    conditions = {c.label for c in art.conditions}

    def quantities(x):
        if isinstance(x, Q):
            yield x
        for k in ("a", "b"):
            if hasattr(x, k):
                yield from quantities(getattr(x, k))

    for c in paper_values(aid).claims:
        for check in c.checks:
            for q in [*quantities(check.left), *quantities(check.right)]:
                assert q.variant in variants, (c.id, q)
                assert q.condition is None or q.condition in conditions, (c.id, q)


def _table1_history(pl_upd=159.0, bn04=94.8, cnn04=90.7, pl_first=90.3):
    """FAKE numbers shaped like Table 1's (epochs 1..2), to exercise the declared claims."""
    rows = []
    for var, first, last, r04, r10, upd in (("Phased LSTM", pl_first, 97.3, 95.1, 97.3, pl_upd),
                                             ("BN-LSTM", 40.9, 96.9, bn04, 96.6, 3153.0),
                                             ("CNN", 73.8, 95.0, cnn04, 95.0, None)):
        rows += [(var, "default", 0, "test_acc", [first, last]),
                 (var, "default", 0, "rho_0.4/test_acc", [r04 - 5, r04]),
                 (var, "default", 0, "rho_1.0/test_acc", [r10 - 5, r10])]
        if upd is not None:
            rows.append((var, "default", 0, "updates_per_neuron", [upd, upd]))
    return history(rows)


def test_table1_declared_claims_follow_the_numbers():
    claims = {c.id: c for c in paper_values("table1").claims}
    assert set(claims) == {"table1-epoch1", "table1-best", "table1-rho", "table1-updates"}
    h = _table1_history()  # the paper's own numbers: every claim holds
    assert {k: c.evaluate(h).verdict for k, c in claims.items()} == dict.fromkeys(claims, HOLDS)
    assert claims["table1-updates"].evaluate(_table1_history(pl_upd=400.0)).verdict == FAILS
    assert claims["table1-rho"].evaluate(_table1_history(bn04=88.0)).verdict == FAILS
    assert claims["table1-epoch1"].evaluate(_table1_history(pl_first=30.0)).verdict == FAILS
    # the synthetic stand-in is judged by the same claims
    assert [c.id for c in paper_values("nmnist-synthetic").claims] == list(claims)


def test_fig6c_declared_claims_follow_the_numbers():
    claims = {c.id: c for c in paper_values("fig6c").claims}
    rows = []
    for var, loss in (("Phased LSTM", [2.0, 1.0]), ("BN-LSTM", [3.0, 2.0]), ("LSTM", [3.0, 2.5])):
        for res in ("low", "high"):
            rows += [(var, res, 0, "video/test_loss", loss),
                     (var, res, 0, "video/test_acc", [40.0, 70.0]),
                     (var, res, 0, "audio/test_acc", [95.0, 99.0]),
                     (var, res, 0, "test_acc", [96.0, 99.2])]
    h = history(rows)
    assert {k: c.evaluate(h).verdict for k, c in claims.items()} == dict.fromkeys(claims, HOLDS)
    slow = h.copy()
    slow.loc[(slow["variant"] == "Phased LSTM") & (slow["metric"] == "video/test_loss"),
             "value"] = 5.0
    assert claims["fig6c-faster"].evaluate(slow).verdict == FAILS
    low = h.copy()
    low.loc[(low["variant"] == "LSTM") & (low["metric"] == "audio/test_acc"), "value"] = 97.0
    assert claims["fig6c-audio"].evaluate(low).verdict == FAILS
