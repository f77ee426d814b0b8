"""``plstm reproduce --dry-run``: the grid points a reproduce would train, each with its time
estimated on this machine, before anything long starts.

For each distinct config (the seeds of a grid point share one) a few training steps are timed
on batches drawn as ``fit`` draws them (bucketed where the config says so), after one warm-up
step, and one evaluation batch as ``evaluate`` cuts them. A run's estimate is then

    steps x median step time + evaluated epochs x (test pass + each test-time condition's)

with steps = epochs x ceil(n_train / batch size), capped by ``train.max_steps``. A test pass is
the timed batch scaled by padded steps (rows x longest row of each length-sorted batch). Data
generation, tracking, claims and checkpoint writes are not included.

Nothing is trained and nothing is written: the tracking store is only read, where one exists,
to mark the points that are already finished (a reproduce skips them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, spec_hash
from .data.registry import FILES, SYNTHETIC, dataset_spec
from .errors import UsageError
from .experiments import Artifact
from .sweep.kinds import user_error_types

# built from a seed: a small sample has the lengths of the full split, so only that is made
NOT_TRAINED = {"finished": "finished: skipped",
               "live": "trained by another process now: skipped",
               "diverged": "diverged before: skipped (--restart retrains it)"}


@dataclass(frozen=True)
class Cost:
    """One config on this machine: split sizes, the median training step and one evaluation
    pass over the test split and every test-time condition's."""

    n_train: int
    n_test: int
    step_s: float
    eval_s: float


@dataclass(frozen=True)
class Row:
    """One grid point of the plan."""

    artifact: str
    variant: str
    condition: str
    seed: int
    epochs: int
    steps: int = 0  # optimiser steps of the whole run (0: unknown)
    seconds: float | None = None  # the whole run; None: no estimate (see note)
    state: str = ""  # in the store: finished | live | diverged | unfinished | missing ("": none)
    trains: bool = True  # would this reproduce train it (not finished, busy or diverged)
    note: str = ""


# --- measurement -----------------------------------------------------------------------------

def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _step_times(model, opt, data, groups, cfg: RunConfig) -> list[float]:
    """Seconds of one training step per index batch, as ``fit`` does it (its ``train_step``)."""
    from .train import train_step

    tc = cfg.train
    model.train()
    times = []
    for idx in groups:
        t0 = time.perf_counter()
        loss, _, _ = train_step(model, opt, data.batch(idx).to(tc.device), tc)
        float(loss.detach())  # fit reads the loss every step
        _sync(tc.device)
        times.append(time.perf_counter() - t0)
    return times


def _eval_batch_s(model, data, idx, device: str) -> float:
    """Seconds of one evaluation batch, as ``evaluate`` does it."""
    import torch

    from .train import loss_and_hits

    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        b = data.batch(idx).to(device)
        loss_and_hits(model(*b.inputs), b)
        if hasattr(model, "update_stats"):
            model.update_stats(*b.inputs)
        _sync(device)
        return time.perf_counter() - t0


def _eval_pass_s(model, data, n_total: int, cfg: RunConfig) -> float:
    """One pass of ``evaluate`` over ``n_total`` rows like those of ``data``: the middle of its
    length-sorted batches timed, scaled by padded steps. ``data`` holds every row or a sample."""
    import torch

    order = torch.argsort(data.lengths)
    chunks = order.split(cfg.train.eval_batch_size)
    idx = chunks[(len(chunks) - 1) // 2]  # a full batch where there is one
    _eval_batch_s(model, data, idx[:2], cfg.train.device)  # warm-up (first-call costs)
    seconds = _eval_batch_s(model, data, idx, cfg.train.device)
    timed = len(idx) * int(data.lengths[idx].max())
    if len(data) >= n_total:
        cells = sum(len(c) * int(data.lengths[c].max()) for c in chunks)
    else:  # a sample: sorted batches pad little, so a pass is about the total of the lengths
        cells = n_total * float(data.lengths.double().mean())
    return seconds * cells / timed


def _mnist_size(data_cfg, split: str) -> int:
    """Rows of an MNIST split (its label file is small; the images are not read)."""
    from .data.mnist import MNIST, read_idx

    n = len(read_idx(MNIST.folder(Path(data_cfg.root)) / MNIST.splits[split][1]))
    return min(n, data_cfg.n_train if split == "train" else data_cfg.n_test)


def _split(data_cfg, split: str, seed: int, rows: int):
    """(the split or a sample of ``rows`` of it, the split's full size). Generated datasets and
    MNIST are sampled; the others are read lazily (event and GRID stores) or small (digits)."""
    from .data import load_split

    n = data_cfg.n_train if split == "train" else data_cfg.n_test
    key = "n_train" if split == "train" else "n_test"
    spec = dataset_spec(data_cfg.name)
    if spec.sampled:
        size = _mnist_size(data_cfg, split) if spec.origin == FILES else n
        small = dataclasses.replace(data_cfg, **{key: max(1, min(n, rows))})
        return load_split(small, split, seed), size
    data = load_split(data_cfg, split, seed)
    return data, len(data)


def measure(art: Artifact, cfg: RunConfig, steps: int = 3) -> Cost:
    """Time ``steps`` training steps (after one warm-up) and the evaluation passes of ``cfg``.
    Raises FileNotFoundError when the dataset's files are missing."""
    import torch

    from .train import batches, condition_config, make_model

    if steps < 1:
        raise UsageError(f"measure: expected at least 1 timed step, got {steps}")
    tc = cfg.train
    train, n_train = _split(cfg.data, "train", cfg.seed, (steps + 1) * tc.batch_size)
    test, n_test = _split(cfg.data, "test", cfg.seed, tc.eval_batch_size)
    model = make_model(cfg, train.input_size, train.num_outputs, train).to(tc.device)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    train.set_epoch(1)  # event data: epoch 1's drop of events (a no-op for the others)
    gen = torch.Generator().manual_seed(cfg.seed)
    groups = batches(len(train), tc.batch_size, gen, train.lengths if tc.bucket else None)
    groups = [groups[i % len(groups)] for i in range(steps + 1)]
    step_s = statistics.median(_step_times(model, opt, train, groups, cfg)[1:])
    eval_s = _eval_pass_s(model, test, n_test, cfg)
    for cell in art.evaluations:  # the test-time conditions, evaluated every epoch too
        ccfg = condition_config(cfg, cell.overrides)
        data, n = _split(ccfg.data, "test", cfg.seed, tc.eval_batch_size)
        eval_s += _eval_pass_s(model, data, n, ccfg)
    return Cost(n_train, n_test, step_s, eval_s)


def run_seconds(cfg: RunConfig, cost: Cost) -> tuple[int, float]:
    """(optimiser steps, estimated seconds) of one run of ``cfg``."""
    per_epoch = max(1, math.ceil(cost.n_train / cfg.train.batch_size))
    steps = cfg.train.epochs * per_epoch
    if cfg.train.max_steps:
        steps = min(steps, cfg.train.max_steps)
    evaluated = math.ceil(steps / per_epoch)  # fit evaluates after every epoch it starts
    return steps, steps * cost.step_s + evaluated * cost.eval_s


@contextlib.contextmanager
def _threads(n: int):
    """torch's thread count set to ``n`` while measuring, as a --jobs worker has it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_threads(jobs: int) -> int:
    """The torch threads a grid point trains with: this process's, or a --jobs worker's."""
    import torch

    from .sweep.shards import threads_per_job

    return threads_per_job(jobs) if jobs > 1 else torch.get_num_threads()


def _data_hint(name: str) -> str:
    spec = dataset_spec(name)
    if spec.origin == SYNTHETIC:
        return "SYNTHETIC, generated by the first run (a few minutes)"
    if not spec.cached:
        return f"plstm download {name}"
    return f"plstm download {name}, then plstm preprocess {name}"


# --- the plan --------------------------------------------------------------------------------

def store_states(points: list[tuple[Artifact, RunConfig]], root: Path) -> dict[str, str]:
    """config hash -> finished | live | diverged | unfinished | missing, read from the tracking
    store only where one exists (MLFLOW_TRACKING_URI, or ROOT/mlflow.db); {} otherwise. Reads
    only: no experiment, run or tag is created."""
    from . import results
    from .sweep.leases import summarize

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    db = Path(root) / "mlflow.db"
    if not uri:
        if not db.is_file():
            return {}
        uri = f"sqlite:///{db.resolve()}"
    from .tracking import MlflowTracker

    client = MlflowTracker(uri=uri, root=root).client  # the client: reads without preparing
    by_art: dict[str, list[str]] = {}
    for art, cfg in points:
        by_art.setdefault(art.id, []).append(spec_hash(cfg))
    states: dict[str, str] = {}
    for aid, hashes in by_art.items():
        exp = client.get_experiment_by_name(aid)
        runs, token = [], None
        while exp is not None:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
        states.update(summarize(results.by_point(runs, hashes)))
    return states


def estimate(points: list[tuple[Artifact, RunConfig]], *, jobs: int = 1,
             root: Path | None = None, restart: bool = False, measure_steps: int = 3,
             progress: bool = False) -> list[Row]:
    """One Row per (artifact, config) of ``points``, in order, each with its estimated time.
    ``root``: also read which points the store holds finished (see :func:`store_states`)."""
    from tqdm.auto import tqdm

    from .experiments import labels_for

    def key(art, cfg):
        return art.id, spec_hash(dataclasses.replace(cfg, seed=0))

    distinct = {key(a, c): (a, c) for a, c in reversed(points)}  # the first seed of each
    states = store_states(points, root) if root is not None else {}
    costs: dict[tuple, Cost | str] = {}
    with _threads(measure_threads(jobs)):
        for k in tqdm(list(dict.fromkeys(key(a, c) for a, c in points)), desc="measuring",
                      disable=not progress, dynamic_ncols=True, leave=False):
            art, cfg = distinct[k]
            try:
                costs[k] = measure(art, cfg, measure_steps)
            except FileNotFoundError:
                costs[k] = f"needs data: {_data_hint(cfg.data.name)}"
            except user_error_types() as e:  # reproduce skips such a point too
                costs[k] = f"error: {e}"
    rows = []
    for art, cfg in points:
        var, cond = labels_for(art, cfg)
        cost = costs[key(art, cfg)]
        state = states.get(spec_hash(cfg), "")
        skipped = NOT_TRAINED.get(state) if not (state == "diverged" and restart) else None
        note = skipped or ("resumes from its checkpoint (estimate: the whole run)"
                           if state == "unfinished" and not restart else "")
        steps, seconds = run_seconds(cfg, cost) if isinstance(cost, Cost) else (0, None)
        if isinstance(cost, str):
            note = f"{cost}; {note}" if note else cost
        rows.append(Row(art.id, var, cond, cfg.seed, cfg.train.epochs, steps, seconds, state,
                        skipped is None, note))
    return rows


def plan(artifacts: list[Artifact | str], scale: str, jobs: int = 1, shard: str | None = None,
         measure_steps: int = 3, root: Path | None = None, restart: bool = False,
         progress: bool = False) -> list[Row]:
    """The rows of ``plstm reproduce ... --dry-run``: the artifacts' grid points at ``scale``,
    the shard's share of them, as ``reproduce`` selects them."""
    from .experiments import check_scale, get_artifact
    from .sweep.shards import parse_shard, select_shard

    check_scale(scale)
    arts = [get_artifact(a) if isinstance(a, str) else a for a in artifacts]
    points = [(art, cfg) for art in arts for _, _, _, cfg in art.runs(scale)]
    mine = select_shard(points, parse_shard(shard))
    return estimate(mine, jobs=jobs, root=root, restart=restart, measure_steps=measure_steps,
                    progress=progress)


def wall_seconds(rows: list[Row], jobs: int = 1) -> float:
    """Wall time of the points to train when ``jobs`` workers take them in plan order, each
    the next one when free (as ``sweep.pool.run_pool`` does)."""
    todo = [r.seconds for r in rows if r.trains and r.seconds is not None]
    if jobs <= 1 or len(todo) <= 1:
        return float(sum(todo))
    free = [0.0] * min(jobs, len(todo))
    for s in todo:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h ({seconds / 60:.1f} min)"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m = seconds / 60
    return f"{m:.2f}" if m >= 0.01 else "<0.01"


def format_plan(rows: list[Row], jobs: int = 1, heading: str = "", footer: str = "") -> str:
    """The plan as text: a table of the grid points, then the estimated hours per artifact and
    in total, one after another and with ``jobs`` workers."""
    head = ("artifact", "variant", "condition", "seed", "epochs", "steps", "est. min", "note")
    cells = [(r.artifact, r.variant, r.condition, str(r.seed), str(r.epochs),
              str(r.steps) if r.steps else "?", _minutes(r.seconds), r.note) for r in rows]
    width = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head) - 1)]
    right = {3, 4, 5, 6}

    def line(c):
        parts = [c[i].rjust(width[i]) if i in right else c[i].ljust(width[i])
                 for i in range(len(width))]
        return "  ".join(parts + [c[-1]]).rstrip()

    out = [heading] if heading else []
    out += [line(head), line(tuple("-" * w for w in width) + ("----",))]
    out += [line(c) for c in cells]
    out += ["", "Estimated time to train, per artifact:"]
    for aid in dict.fromkeys(r.artifact for r in rows):
        mine = [r for r in rows if r.artifact == aid]
        todo = [r for r in mine if r.trains]
        unknown = sum(r.seconds is None for r in todo)
        text = f"  {aid}: {len(todo)} of {len(mine)} point(s) to train, " + \
            _hours(sum(r.seconds for r in todo if r.seconds is not None))
        out.append(text + (f" ({unknown} without an estimate)" if unknown else ""))
    todo = [r for r in rows if r.trains]
    unknown = sum(r.seconds is None for r in todo)
    serial = sum(r.seconds for r in todo if r.seconds is not None)
    total = f"Total: {len(todo)} of {len(rows)} point(s) to train: {_hours(serial)} one after " \
            "another"
    if jobs > 1:
        total += f", {_hours(wall_seconds(rows, jobs))} with --jobs {jobs}"
    out.append(total + (f"; {unknown} point(s) without an estimate" if unknown else "") + ".")
    if footer:
        out.append(footer)
    return "\n".join(out)


def method_note(jobs: int, measure_steps: int, device: str = "cpu") -> str:
    return (f"Measured here: the median of {measure_steps} training step(s) per config after one "
            f"warm-up, and one evaluation batch, with {measure_threads(jobs)} torch thread(s) "
            f"({device}); data generation, tracking and checkpoints are not included.")
