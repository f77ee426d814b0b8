"""One training loop and one evaluation for every dataset.

Data flows one way: config -> dataset + model -> fit -> tracker. The checkpoint holds the
resolved config, so ``evaluate_checkpoint`` rebuilds everything from it alone.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .cells.baselines import REFRESH_BATCHES, refresh_statistics
from .config import RunConfig, apply_overrides, config_hash, flat, from_dict, to_dict
from .data import SeqData, load_split
from .data.base import IGNORE
from .errors import CheckpointError, NonFiniteLoss, Stopped
from .models import authors_init, build_model
from .tracking import FAILED, FINISHED, KILLED, NullTracker, Tracker, describe_split


@dataclass
class RunResult:
    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    seconds: float = 0.0
    skipped: bool = False
    note: str = ""  # why a run was not trained here (busy elsewhere, diverged before)


# --- model and data --------------------------------------------------------------------------

def grid_sizes(hidden: int) -> dict:
    """GRID's layer widths from model.hidden_size, the video layer's: 110 gives the paper's
    110 (video), 150 (audio), 250 and 250 (merged); smaller values scale all four alike."""
    return {"video_hidden": hidden, "audio_hidden": max(1, round(hidden * 150 / 110)),
            "merged": (max(1, round(hidden * 250 / 110)),) * 2}


def make_model(cfg: RunConfig, input_size: int, num_outputs: int, data=None) -> nn.Module:
    """The model of ``cfg.model``, initialised from the run's seed without touching the global
    RNG state (fork_rng restores it). ``data`` (a split) tells what the inputs are: the size of
    an index feature to embed (``num_indices``), the sensor of an event CNN."""
    m = cfg.model
    kw: dict = {}
    if getattr(data, "arch", None) == "grid_fusion":  # GRID: the fusion network around the cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_model("grid_fusion", cell=m.name, num_outputs=num_outputs,
                               audio_features=input_size, clocks=data.clocks, r_on=m.r_on,
                               leak=m.leak, learn_time=m.learn_time,
                               **grid_sizes(m.hidden_size))
    if m.name == "cnn":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_model("cnn", num_outputs=num_outputs,
                               sensor=getattr(data, "sensor", (34, 34)))
    if m.name in ("phased_lstm", "phased_gru"):
        kw = {"r_on": m.r_on, "leak": m.leak, "tau_init": m.tau_init, "tau_dist": m.tau_dist,
              "learn_time": m.learn_time, "learn_r_on": m.learn_r_on, "shift_max": m.shift_max}
        if m.peephole:
            if m.name != "phased_lstm":
                raise ValueError("model.peephole: only the Phased LSTM has peepholes")
            kw["peephole"] = True
    elif m.name in ("lstm", "bn_lstm"):
        kw = {"time_scale": m.time_scale}
        if m.name == "bn_lstm":  # the other models have no batch norm to place
            kw["bn"] = m.bn
    if m.init not in ("torch", "authors"):
        raise ValueError(f"model.init: expected torch or authors, got {m.init!r}")
    embed = None
    if m.embed_dim > 0:
        num = getattr(data, "num_indices", 0)
        if num <= 0:
            raise ValueError(f"model.embed_dim: {cfg.data.name} has no index feature to embed; "
                             "set model.embed_dim=0")
        embed = (num, m.embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(m.name, input_size=input_size, num_outputs=num_outputs,
                            hidden_size=m.hidden_size, num_layers=m.num_layers,
                            readout=m.readout, embed=embed, head=m.head, **kw)
        return authors_init(model) if m.init == "authors" else model


def batches(n: int, size: int, gen: torch.Generator | None, lengths: torch.Tensor | None = None,
            pool: int = 50) -> list[torch.Tensor]:
    """Index batches of a random permutation. With ``lengths`` (bucketing), each pool of
    ``pool`` batches is sorted by length before it is cut, and the batch order is shuffled
    again: batches hold similar lengths, so far fewer padded steps are computed."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    if lengths is None:
        return list(order.split(size))
    groups = []
    for chunk in order.split(size * pool):
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        groups += list(chunk.split(size))
    perm = torch.randperm(len(groups), generator=gen) if gen is not None else range(len(groups))
    return [groups[i] for i in perm]


def loss_and_hits(out: torch.Tensor, data) -> tuple[torch.Tensor, float, int]:
    """Mean loss of a batch and, for classification, the number of correct predictions and of
    predictions. Labels y [B] (one per sequence) or [B, W] (one per word, IGNORE where a
    sequence has fewer words): the loss is then the mean cross-entropy over the words."""
    if data.task == "classification":
        logits, y = out.reshape(-1, out.shape[-1]), data.y.reshape(-1)
        valid = y != IGNORE
        hits = float((logits.argmax(-1)[valid] == y[valid]).sum())
        return F.cross_entropy(logits, y, ignore_index=IGNORE), hits, int(valid.sum())
    return F.mse_loss(out.reshape(data.y.shape), data.y), 0.0, len(data.y)


def train_step(model: nn.Module, opt, b, tc, forward: nn.Module | None = None,
               weight: float = 1.0) -> tuple[torch.Tensor, float, int]:
    """One optimiser step on the batch ``b``: forward (through ``forward``, e.g. the DDP
    wrapper, else ``model``), the loss, backward of the loss times ``weight``, clipping at
    ``tc.grad_clip``, Adam. Returns ``loss_and_hits``' (loss, hits, predictions)."""
    loss, hits, npred = loss_and_hits((forward or model)(*b.inputs), b)
    (loss * weight).backward()
    if tc.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss, hits, npred


@torch.no_grad()
def evaluate(model: nn.Module, data: SeqData, batch_size: int = 256,
             device: str = "cpu") -> dict[str, float]:
    """Loss and accuracy (percent) or MSE. For recurrent models, the updates per neuron per
    sequence (Table 1's last row, first layer): for phased models the steps with k > 0 at leak
    0, counted as the sparse kernel and ``count_updates`` count them, with the mean time-gate
    openness; for the others every valid step."""
    was_training = model.training
    model.eval()
    total, hits, n, preds = 0.0, 0.0, 0, 0
    stats: dict[str, float] = {}
    order = torch.argsort(data.lengths)  # similar lengths together: less padding
    for idx in order.split(batch_size):
        b = data.batch(idx).to(device)
        out = model(*b.inputs)
        loss, h, npred = loss_and_hits(out, b)
        total += float(loss) * npred
        hits += h
        n += len(idx)
        preds += npred
        if hasattr(model, "update_stats"):  # sums over the batch
            for k, v in model.update_stats(*b.inputs).items():
                stats[k] = stats.get(k, 0.0) + v
    model.train(was_training)
    res = {"test_loss": total / preds}
    if data.task == "classification":
        res["test_acc"] = 100.0 * hits / preds
    else:
        res["test_mse"] = total / preds
    res.update({k: v / (stats["steps"] if k == "gate_openness" else n)
                for k, v in stats.items() if k != "steps"})
    return res


# --- checkpoints -----------------------------------------------------------------------------

def save_checkpoint(path: Path, **payload) -> Path:
    """Write to a temp name, then rename: a crash never leaves a partial file looking complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict:
    """A checkpoint is data: tensors, numbers, strings, lists and dicts. It is unpickled with
    ``weights_only=True``, so a file that would build any other object (and could run code while
    doing so) is refused with a CheckpointError that says so, as is an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a file we cannot use
        text = str(e)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"checkpoint: {path} was refused: it needs {found.group(1)}, and a plstm "
                "checkpoint holds only tensors, numbers, strings, lists and dicts (loading "
                "anything more could run code from the file)") from None
        why = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
        first = why.group(1) if why else (text.strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"checkpoint: {path} is not a readable plstm checkpoint "
                              f"({first.strip()})") from None
    if not isinstance(ck, dict) or "config" not in ck or "model" not in ck:
        raise CheckpointError(f"checkpoint: {path} lacks the config and model state it should "
                              "hold")
    return ck


def checkpoint_path(root: Path, run_id: str) -> Path:
    return Path(root) / "checkpoints" / run_id / "last.pt"


# --- the loop --------------------------------------------------------------------------------

def dist_info():
    """(torch.distributed or None, rank, world size)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def start_run(tracker: Tracker, cfg: RunConfig, experiment: str, run_name: str = "",
              tags: dict | None = None) -> str:
    """Create the tracked run of ``cfg``: the resolved config as params; its hash, dataset, model
    and seed as tags, then ``tags`` (which may name a parent run, ``mlflow.parentRunId``)."""
    all_tags = {"config_hash": config_hash(cfg), "dataset": cfg.data.name,
                "model": cfg.model.name, "seed": cfg.seed, **(tags or {})}
    return tracker.start(experiment, run_name or f"{cfg.data.name}-{cfg.model.name}", flat(cfg),
                         all_tags)


class StopRequest:
    """SIGINT and SIGTERM (what a scheduler sends) set a flag that the loop reads between
    batches: the step in progress completes, a checkpoint is written, then the run ends KILLED.
    A second signal interrupts at once. Only the main thread can own signal handlers; elsewhere
    this does nothing and Ctrl-C raises KeyboardInterrupt as usual."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum


def fit(cfg: RunConfig, tracker: Tracker | None = None, *, experiment: str = "adhoc",
        run_name: str = "", tags: dict | None = None, root: Path | str = "runs",
        resume_run_id: str | None = None, progress: bool = True, run_id: str | None = None,
        checkpoint_every_s: float | None = 600.0,
        evaluations: dict[str, dict] | None = None) -> RunResult:
    """Train ``cfg`` and evaluate on the test split after every epoch.

    ``evaluations`` ({label: data.* overrides}, an artifact's test-time conditions) also
    evaluates the model on the test split under each of them every epoch, logged as
    ``<label>/<metric>`` (e.g. ``rho_0.4/test_acc``): another data setting, no retraining.

    Logs params, tags, dataset inputs and per-epoch metrics to ``tracker`` (into ``run_id`` when
    the caller already created the run, else into a new one); writes ``runs/checkpoints/<run>/
    last.pt`` after every epoch and, inside an epoch, every ``checkpoint_every_s`` seconds.
    SIGINT or SIGTERM stops at the next batch boundary with a checkpoint and the run ends KILLED
    (``Stopped``); a non-finite loss ends it FAILED (``NonFiniteLoss``) keeping the last good
    checkpoint; any other exception ends it FAILED. ``resume_run_id`` continues such a run from
    its checkpoint, mid-epoch included, to the same weights as an uninterrupted run (randomness
    inside an epoch must come from ``gen`` or be keyed by (seed, epoch, sample), as the event
    splits' ``set_epoch`` is). Under torch.distributed each rank trains on its share of every
    global batch and only rank 0 logs and saves.
    """
    dist, rank, world = dist_info()
    tracker = tracker if (tracker is not None and rank == 0) else NullTracker()
    root = Path(root)
    t_start = time.time()
    train_set = load_split(cfg.data, "train", cfg.seed)
    test_set = load_split(cfg.data, "test", cfg.seed)
    extra_tests = {label: load_split(condition_config(cfg, ov).data, "test", cfg.seed)
                   for label, ov in (evaluations or {}).items()}
    model = make_model(cfg, train_set.input_size, train_set.num_outputs,
                       train_set).to(cfg.train.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, step, epochs, partial = 1, 0, [], None
    if resume_run_id:
        ck = load_checkpoint(checkpoint_path(root, resume_run_id))
        if ck["config"] != to_dict(cfg):
            raise ValueError(f"--resume: run {resume_run_id} was trained with another config")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        start_epoch, step = ck["epoch"] + 1, ck["step"]
        epochs = list(ck.get("epochs", []))
        partial = ck.get("partial")
        run_id = resume_run_id
        tracker.reopen(run_id)
    else:
        if run_id is None:
            run_id = start_run(tracker, cfg, experiment, run_name, tags)
        tracker.log_inputs(run_id, [describe_split(cfg, "train", train_set),
                                    describe_split(cfg, "test", test_set)])
    train_model = model
    if dist is not None:
        train_model = nn.parallel.DistributedDataParallel(model)
    ck_path = checkpoint_path(root, run_id)
    status = FAILED
    tc = cfg.train
    label = run_name or f"{cfg.data.name}/{cfg.model.name}"
    done_epoch = start_epoch - 1
    saved = f"after epoch {done_epoch}" if ck_path.exists() else ""

    def save(within: dict | None = None) -> None:
        """The state after ``done_epoch`` epochs, plus ``within`` = where we are inside the next
        one (its first batches done, the generator at its start, the running sums)."""
        nonlocal saved
        saved = (f"after epoch {done_epoch}" if within is None else
                 f"in epoch {within['epoch']} after batch {within['batch']}")
        if rank == 0:
            save_checkpoint(ck_path, config=to_dict(cfg), model=model.state_dict(),
                            optimizer=opt.state_dict(), generator=gen.get_state(),
                            epoch=done_epoch, step=step, epochs=epochs, partial=within)

    last_save, last_loss = time.monotonic(), float("nan")
    try:
        with StopRequest() as stop:
            for epoch in range(start_epoch, tc.epochs + 1):
                t0 = time.time()
                model.train()
                # running sums: loss, hits, rows; and the same over the log_every window
                # (and predictions: one per sequence, or per word for GRID)
                run = {"loss": 0.0, "hits": 0.0, "n": 0, "p": 0,
                       "wloss": 0.0, "whits": 0.0, "wn": 0, "wp": 0}
                first = 0
                if partial is not None and partial["epoch"] == epoch:  # resume inside it
                    gen.set_state(partial["generator"])
                    first, run = partial["batch"], dict(partial["sums"])
                    t0 -= partial["seconds"]
                partial = None
                # event data: a fresh rho drop every epoch; fresh generated data (the authors'
                # frequency tasks): new train and test samples every epoch
                for split in (train_set, test_set, *extra_tests.values()):
                    if hasattr(split, "set_epoch"):
                        split.set_epoch(epoch)
                epoch_gen = gen.get_state()  # the batches below are drawn from this state
                groups = batches(len(train_set), tc.batch_size, gen,
                                 train_set.lengths if tc.bucket else None)
                bar = _bar(len(groups), f"{label} epoch {epoch}/{tc.epochs}",
                           progress and rank == 0, initial=first)
                for i in range(first, len(groups)):
                    idx = groups[i]
                    part = idx if world == 1 else idx.tensor_split(world)[rank]
                    # a rank left without rows still runs the batch (DDP needs every rank's
                    # backward) with weight 0
                    b = train_set.batch(part if len(part) else idx).to(tc.device)
                    # each rank's mean is weighted by its share, so DDP's gradient average is
                    # the mean over the global batch, equal to a single process
                    loss, h, npred = train_step(model, opt, b, tc, train_model,
                                                len(part) * world / len(idx))
                    step += 1
                    n_rows = len(part)
                    lsum, hsum, nsum, psum, asked = _reduce(
                        dist, float(loss.detach()) * n_rows, h if n_rows else 0.0, n_rows,
                        npred if n_rows else 0, float(stop.signum is not None))
                    if not math.isfinite(lsum):
                        raise NonFiniteLoss(
                            f"non-finite loss ({lsum / max(nsum, 1):g}) at step {step} (epoch "
                            f"{epoch}, batch {i + 1}/{len(groups)}); last finite loss "
                            f"{last_loss:.4g}; learning rate {tc.lr:g}. Run {run_id[:8]} is "
                            "FAILED; " + (f"its last checkpoint ({saved}) stays: {ck_path}"
                                          if saved else "no checkpoint was written yet"))
                    last_loss = lsum / max(nsum, 1)
                    for k, v in (("loss", lsum), ("hits", hsum), ("n", nsum), ("p", psum)):
                        run[k] += v
                        run["w" + k] += v
                    bar.update(1)
                    bar.set_postfix(loss=f"{run['loss'] / run['n']:.4f}")
                    if tc.log_every and step % tc.log_every == 0:
                        m = {"step_train_loss": run["wloss"] / run["wn"]}
                        if train_set.task == "classification":
                            m["step_train_acc"] = 100.0 * run["whits"] / run["wp"]
                        tracker.log_metrics(run_id, m, step)
                        run.update(wloss=0.0, whits=0.0, wn=0, wp=0)
                    due = checkpoint_every_s is not None and \
                        time.monotonic() - last_save >= checkpoint_every_s
                    if asked or due:
                        save({"epoch": epoch, "batch": i + 1, "generator": epoch_gen,
                              "sums": dict(run), "seconds": time.time() - t0})
                        last_save = time.monotonic()
                        if asked:
                            raise Stopped(stop.signum or signal.SIGTERM)
                    if tc.max_steps and step >= tc.max_steps:
                        break
                bar.close()
                metrics = {"train_loss": run["loss"] / run["n"],
                           "epoch_time_s": time.time() - t0}
                if train_set.task == "classification":
                    metrics["train_acc"] = 100.0 * run["hits"] / run["p"]
                # recurrent batch norm: population statistics of the final weights (issue 22)
                refresh_statistics(model, (train_set.batch(g).to(tc.device).inputs
                                           for g in groups[-REFRESH_BATCHES:]))
                metrics.update(evaluate(model, test_set, tc.eval_batch_size, tc.device))
                for cond, data in extra_tests.items():
                    res = evaluate(model, data, tc.eval_batch_size, tc.device)
                    metrics.update({f"{cond}/{k}": v for k, v in res.items()})
                tracker.log_metrics(run_id, metrics, epoch)
                epochs.append(metrics)
                done_epoch = epoch
                save()
                last_save = time.monotonic()
                if _reduce(dist, float(stop.signum is not None))[0]:  # a signal during eval
                    raise Stopped(stop.signum or signal.SIGTERM)
                if tc.max_steps and step >= tc.max_steps:
                    break
        if rank == 0 and ck_path.exists():
            tracker.log_artifact(run_id, ck_path, "checkpoint")
            if epochs:
                from .plots import plot_run_curves
                fig = plot_run_curves(epochs, ck_path.parent, label)
                tracker.log_artifact(run_id, fig, "figures")
        status = FINISHED
    except KeyboardInterrupt:
        status = KILLED
        raise
    except NonFiniteLoss as e:
        tracker.set_tags(run_id, {"plstm.failure": f"non-finite loss at step {step}"})
        e.run_id = run_id
        raise
    finally:
        tracker.end(run_id, status)
    # the last epoch's metrics (from the checkpoint when a resumed run had no epoch left)
    final = dict(epochs[-1]) if epochs else {}
    return RunResult(run_id, status, final, ck_path if ck_path.exists() else None,
                     time.time() - t_start)


def _reduce(dist, *vals):
    if dist is None:
        return vals
    t = torch.tensor(vals, dtype=torch.float64)
    dist.all_reduce(t)
    return tuple(t.tolist())


def _bar(total: int, desc: str, enabled: bool, initial: int = 0):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True,
                initial=initial)


# --- evaluation of a trained model ------------------------------------------------------------

EVAL_KEYS = ("train.eval_batch_size", "train.device")


def condition_config(cfg: RunConfig, overrides: list[str] | dict) -> RunConfig:
    """``cfg`` under a test-time condition: only ``data.*`` (and how evaluation runs:
    ``train.eval_batch_size``, ``train.device``) may change; the model stays as trained."""
    keys = overrides.keys() if isinstance(overrides, dict) else [
        o.split("=", 1)[0].strip() for o in overrides]
    bad = [k for k in keys if not (k.startswith("data.") or k in EVAL_KEYS)]
    if bad:
        raise ValueError(f"a test-time condition may only change data.* (and "
                         f"{', '.join(EVAL_KEYS)}), got {', '.join(bad)}")
    return apply_overrides(cfg, overrides)


def evaluate_checkpoint(path: Path, overrides: list[str] | dict | None = None,
                        seed: int | None = None) -> tuple[RunConfig, dict[str, float]]:
    """Rebuild the model from a checkpoint alone and evaluate it on the test split of its
    dataset, possibly under another condition (``overrides`` of ``data.*``)."""
    ck = load_checkpoint(path)
    cfg = from_dict(ck["config"])
    if overrides:
        cfg = condition_config(cfg, overrides)
    test_set = load_split(cfg.data, "test", cfg.seed if seed is None else seed)
    model = make_model(cfg, test_set.input_size, test_set.num_outputs, test_set)
    model.load_state_dict(ck["model"])
    res = evaluate(model, test_set, cfg.train.eval_batch_size)
    if not math.isfinite(res["test_loss"]):
        raise RuntimeError(f"evaluation of {path} gave a non-finite loss")
    return cfg, res
