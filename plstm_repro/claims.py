"""The paper's claims as predicates over tracked results, declared as data.

A claim is the paper's statement, where it says it, how it is measured, and ``checks``: numbers
read from tracked runs, compared. Each artifact's claims sit beside its reference numbers
(:mod:`plstm_repro.reference`); ``plstm report`` and the parent runs evaluate them.

The vocabulary, all frozen dataclasses:

- ``Q(variant, metric, condition, at, over_seeds)``: per seed, the runs of ``variant`` under
  ``condition``, their ``metric`` reduced over steps by ``at`` (``last``, ``first``, ``max``,
  ``min``, ``mean`` (the area under the curve per step), ``mean_log10``, ``tail:N`` (mean of
  the last N values), ``step:N``); then over seeds by ``over_seeds`` (``mean`` or ``std``).
  A test-time condition (a checkpoint evaluated under other data settings) is just another
  ``condition`` label, or another ``metric`` name, in the same table.
- ``Diff(a, b)``, ``Ratio(a, b)``, ``Const(x)``: arithmetic on those.
- ``Compare(left, op, right, margin)``: ``left op right + margin`` with ``op`` one of
  ``>=, >, <=, <``.
- ``Claim(id, statement, source, checks, measured_as, min_seeds)``: holds when every check
  holds; ``not enough runs`` when a number is missing or has fewer seeds than needed.

Helpers build the usual shapes: :func:`beats` (one variant at least as good as others in each
condition), :func:`ordered` (a chain), :func:`degrades_less` (a smaller drop between two
conditions). For example, Table 1's "Phased LSTM needs ~20x fewer updates per neuron than
BN-LSTM" is ``Compare(Ratio(Q("BN-LSTM", "updates_per_neuron"), Q("Phased LSTM",
"updates_per_neuron")), ">=", Const(10))`` and "RNNs degrade less than the CNN from rho 0.75 to
0.4" is ``degrades_less(["Phased LSTM", "BN-LSTM"], "CNN", "test_acc", "rho 0.75",
"test rho 0.4")``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HOLDS, FAILS, NOT_ENOUGH = "holds", "does not hold", "not enough runs"
OPS = {">=": (lambda a, b: a >= b, "≥"), ">": (lambda a, b: a > b, ">"),
       "<=": (lambda a, b: a <= b, "≤"), "<": (lambda a, b: a < b, "<")}


class Missing(Exception):
    """A quantity has no (or too few) values in the tracked results."""


@dataclass(frozen=True)
class Q:
    """A tracked quantity: see the module docstring."""

    variant: str
    metric: str
    condition: str | None = None
    at: str = "last"
    over_seeds: str = "mean"

    def label(self) -> str:
        where = f" [{self.condition}]" if self.condition else ""
        how = "" if self.at == "last" else f" ({self.at})"
        spread = " std over seeds" if self.over_seeds == "std" else ""
        return f"{self.variant} {self.metric}{where}{how}{spread}"

    def per_seed(self, results: pd.DataFrame) -> dict[int, float]:
        """seed -> the metric of that seed's run, reduced over steps by ``at``."""
        r = results[(results["variant"] == self.variant) & (results["metric"] == self.metric)]
        if self.condition is not None:
            r = r[r["condition"] == self.condition]
        out: dict[int, float] = {}
        for (seed, _run), g in r.groupby(["seed", "run_id"], sort=True):
            v = _reduce_steps(g.sort_values("step"), self.at)
            if v is not None and int(seed) not in out:
                out[int(seed)] = v
        return out

    def evaluate(self, results: pd.DataFrame, min_seeds: int) -> tuple[float, dict]:
        vals = self.per_seed(results)
        need = max(min_seeds, 2 if self.over_seeds == "std" else 1)
        if len(vals) < need:
            raise Missing(f"{self.label()}: {len(vals)} seed(s), {need} needed")
        arr = np.array(list(vals.values()), dtype=float)
        value = float(np.std(arr)) if self.over_seeds == "std" else float(np.mean(arr))
        return value, {self.label(): (value, sorted(vals))}


def _reduce_steps(g: pd.DataFrame, at: str) -> float | None:
    v = g["value"].to_numpy(dtype=float)
    if len(v) == 0:
        return None
    if at == "last":
        return float(v[-1])
    if at == "first":
        return float(v[0])
    if at in ("max", "min", "mean"):
        return float(getattr(np, at)(v))
    if at == "mean_log10":
        return float(np.mean(np.log10(np.maximum(v, 1e-30))))
    kind, _, n = at.partition(":")
    if kind == "tail":
        return float(np.mean(v[-int(n):]))
    if kind == "step":
        hit = g[g["step"] == int(n)]["value"]
        return float(hit.iloc[-1]) if len(hit) else None
    raise ValueError(f"claims: unknown reduction at={at!r}")


@dataclass(frozen=True)
class Const:
    value: float

    def label(self) -> str:
        return f"{self.value:g}"

    def evaluate(self, results, min_seeds):
        return float(self.value), {}


@dataclass(frozen=True)
class Diff:
    a: object
    b: object

    def label(self) -> str:
        return f"({self.a.label()} − {self.b.label()})"

    def evaluate(self, results, min_seeds):
        va, da = self.a.evaluate(results, min_seeds)
        vb, db = self.b.evaluate(results, min_seeds)
        return va - vb, {**da, **db}


@dataclass(frozen=True)
class Ratio:
    a: object
    b: object

    def label(self) -> str:
        return f"({self.a.label()} / {self.b.label()})"

    def evaluate(self, results, min_seeds):
        va, da = self.a.evaluate(results, min_seeds)
        vb, db = self.b.evaluate(results, min_seeds)
        return (va / vb if vb else math.inf), {**da, **db}


@dataclass(frozen=True)
class Compare:
    left: object
    op: str
    right: object
    margin: float = 0.0

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"claims: unknown comparison {self.op!r}; valid: {', '.join(OPS)}")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # the paper's words
    source: str  # where the paper says it
    checks: tuple[Compare, ...]
    measured_as: str = ""  # how the statement is turned into the numbers of ``checks``
    min_seeds: int = 1

    def evaluate(self, results: pd.DataFrame) -> Verdict:
        return evaluate_claim(self, results)


@dataclass
class Verdict:
    claim: Claim
    verdict: str  # holds | does not hold | not enough runs
    checks: list[str] = field(default_factory=list)  # one line per comparison, with numbers
    numbers: dict[str, tuple[float, list[int]]] = field(default_factory=dict)  # label ->
    # (value, seeds)
    missing: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return sorted({s for _, seeds in self.numbers.values() for s in seeds})


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def evaluate_claim(claim: Claim, results: pd.DataFrame) -> Verdict:
    """The verdict of ``claim`` on ``results`` (the long history table of the runs of one
    artifact at one scale: run_id, variant, condition, seed, metric, step, value)."""
    lines, numbers, missing, ok = [], {}, [], True
    for c in claim.checks:
        try:
            left, dl = c.left.evaluate(results, claim.min_seeds)
            right, dr = c.right.evaluate(results, claim.min_seeds)
        except Missing as e:
            if str(e) not in missing:
                missing.append(str(e))
            continue
        numbers.update(dl)
        numbers.update(dr)
        test, sym = OPS[c.op]
        holds = bool(test(left, right + c.margin))
        ok &= holds
        rhs = f"{_fmt(right)}" + (f" {'+' if c.margin >= 0 else '−'} {abs(c.margin):g}"
                                  if c.margin else "")
        right_text = rhs if isinstance(c.right, Const) else f"{c.right.label()} = {rhs}"
        lines.append(f"{c.left.label()} = {_fmt(left)} {sym} {right_text}: "
                     f"{'yes' if holds else 'no'}")
    if missing:
        verdict = NOT_ENOUGH
    else:
        verdict = HOLDS if ok else FAILS
    return Verdict(claim, verdict, lines, numbers, missing)


# --- shapes that claims often take ------------------------------------------------------------

def beats(winner: str, others: list[str], metric: str, conditions: list[str | None],
          higher: bool = True, at: str = "last", strict: bool = False) -> tuple[Compare, ...]:
    """``winner`` at least as good as (``strict``: better than) each of ``others`` in each
    condition."""
    op = (">" if strict else ">=") if higher else ("<" if strict else "<=")
    return tuple(Compare(Q(winner, metric, c, at), op, Q(o, metric, c, at))
                 for c in conditions for o in others)


def ordered(variants: list[str], metric: str, condition: str | None = None, at: str = "last",
            op: str = "<=") -> tuple[Compare, ...]:
    """``variants[0] op variants[1] op ...``."""
    return tuple(Compare(Q(a, metric, condition, at), op, Q(b, metric, condition, at))
                 for a, b in itertools.pairwise(variants))


def degrades_less(variants: list[str], than: str, metric: str, before: str, after: str,
                  at: str = "last", strict: bool = True) -> tuple[Compare, ...]:
    """Each of ``variants`` loses less ``metric`` from condition ``before`` to ``after`` than
    ``than`` does (a drop = value before − value after; two equal drops, e.g. all at chance
    in both conditions, are not "less" unless ``strict`` is False)."""
    def drop(v):
        return Diff(Q(v, metric, before, at), Q(v, metric, after, at))
    return tuple(Compare(drop(v), "<" if strict else "<=", drop(than)) for v in variants)
