"""One training loop and one evaluation for every dataset.

Data flows one way: config -> dataset + model -> fit -> tracker. The checkpoint holds the
resolved config, so ``evaluate_checkpoint`` rebuilds everything from it alone.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .cells.bn_lstm import REFRESH_BATCHES, refresh_statistics
from .config import RunConfig, flat, from_dict, same_spec, spec_hash
from .data import load_split
from .distributed import reduce_values, resolve_device
from .errors import ConfigError, NonFiniteLoss, Stopped
from .layout import checkpoint_path
from .loader import Prefetcher
from .tracking import FAILED, FINISHED, KILLED, NullTracker, Tracker, describe_split
from .training.build import grid_sizes, make_model
from .training.checkpoints import load_checkpoint, restore_state, save_checkpoint
from .training.evaluation import EVAL_KEYS, condition_config, evaluate, evaluate_checkpoint
from .training.signals import StopRequest
from .training.state import TrainState
from .training.steps import batches, loss_and_hits

__all__ = ["EVAL_KEYS", "RunResult", "StopRequest", "batches", "checkpoint_path",
           "condition_config", "evaluate", "evaluate_checkpoint", "fit", "grid_sizes",
           "load_checkpoint", "loss_and_hits", "make_model", "restore_state", "save_checkpoint",
           "start_run", "train_step"]


@dataclass
class RunResult:
    run_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    seconds: float = 0.0
    skipped: bool = False
    note: str = ""  # why a run was not trained here (busy elsewhere, diverged before)


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
    all_tags = {"spec_hash": spec_hash(cfg), "dataset": cfg.data.name,
                "model": cfg.model.name, "seed": cfg.seed, **(tags or {})}
    return tracker.start(experiment, run_name or f"{cfg.data.name}-{cfg.model.name}", flat(cfg),
                         all_tags)


def fit(cfg: RunConfig, tracker: Tracker | None = None, *, experiment: str = "adhoc",
        run_name: str = "", tags: dict | None = None, root: Path | str = "runs",
        resume_run_id: str | None = None, progress: bool = True, run_id: str | None = None,
        checkpoint_every_s: float | None = 600.0,
        evaluations: dict[str, dict] | None = None, callbacks: tuple = ()) -> RunResult:
    """Train ``cfg`` and evaluate on the test split after every epoch.

    ``evaluations`` ({label: data.* overrides}, an artifact's test-time conditions) also
    evaluates the model on the test split under each of them every epoch, logged as
    ``<label>/<metric>`` (e.g. ``rho_0.4/test_acc``): another data setting, no retraining.
    ``callbacks`` (e.g. :class:`plstm_repro.training.callbacks.RunCurves`) are told when the
    run finished (``on_finish(tracker, run_id, epochs, folder, label)``).

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
    loop = _open(cfg, tracker, Path(root), experiment, run_name, tags, resume_run_id, run_id,
                 evaluations, progress, checkpoint_every_s)
    status = FAILED
    try:
        with StopRequest() as loop.stop:
            for epoch in range(loop.state.epoch + 1, cfg.train.epochs + 1):
                if _epoch(loop, epoch):
                    break
        loop.finish(callbacks)
        status = FINISHED
    except KeyboardInterrupt:
        status = KILLED
        raise
    except NonFiniteLoss as e:
        loop.tracker.set_tags(loop.run_id, {"plstm.failure":
                                            f"non-finite loss at step {loop.state.step}"})
        e.run_id = loop.run_id
        raise
    finally:
        loop.tracker.end(loop.run_id, status)
    # the last epoch's metrics (from the checkpoint when a resumed run had no epoch left)
    epochs = loop.state.epochs
    final = dict(epochs[-1]) if epochs else {}
    return RunResult(loop.run_id, status, final, loop.ck_path if loop.ck_path.exists() else None,
                     time.time() - loop.t_start)


@dataclass
class _Loop:
    """One run being trained: its config, tracker, data, state and checkpoint bookkeeping."""

    cfg: RunConfig
    tracker: Tracker
    run_id: str
    state: TrainState
    train_set: object
    tests: dict  # "" -> the test split; each test-time condition's label -> its split
    train_model: nn.Module  # the model, or its DDP wrapper
    ck_path: Path
    label: str
    progress: bool
    checkpoint_every_s: float | None
    dist: object = None
    rank: int = 0
    world: int = 1
    t_start: float = 0.0
    saved: str = ""  # which state the checkpoint on disk holds, for the failure message
    last_save: float = 0.0
    last_loss: float = float("nan")
    stop: StopRequest | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # train + eval

    def save(self, within: dict | None = None) -> None:
        """The state after ``state.epoch`` epochs, plus ``within`` = where we are inside the
        next one."""
        self.saved = (f"after epoch {self.state.epoch}" if within is None else
                      f"in epoch {within['epoch']} after batch {within['batch']}")
        if self.rank == 0:
            save_checkpoint(self.ck_path, **self.state.payload(self.cfg, within))
        self.last_save = time.monotonic()

    def finish(self, callbacks) -> None:
        if self.rank == 0 and self.ck_path.exists():
            self.tracker.log_artifact(self.run_id, self.ck_path, "checkpoint")
            for cb in callbacks or ():
                cb.on_finish(self.tracker, self.run_id, self.state.epochs, self.ck_path.parent,
                             self.label)


def _open(cfg, tracker, root, experiment, run_name, tags, resume_run_id, run_id, evaluations,
          progress, checkpoint_every_s) -> _Loop:
    """Data, model and state of the run: a new one (``run_id`` when the caller created it)
    or ``resume_run_id`` continued from its checkpoint (its spec must equal ``cfg``'s)."""
    dist, rank, world = dist_info()
    tracker = tracker if (tracker is not None and rank == 0) else NullTracker()
    t_start = time.time()
    train_set = load_split(cfg.data, "train", cfg.seed)
    tests = {"": load_split(cfg.data, "test", cfg.seed)}
    tests.update({label: load_split(condition_config(cfg, ov).data, "test", cfg.seed)
                  for label, ov in (evaluations or {}).items()})
    # train.device is execution: "cuda" under torchrun is this process's GPU (LOCAL_RANK)
    device = resolve_device(cfg.train.device)
    model = make_model(cfg, train_set.input_size, train_set.num_outputs, train_set).to(device)
    state = TrainState(model, torch.optim.Adam(model.parameters(), lr=cfg.train.lr),
                       torch.Generator().manual_seed(cfg.seed))
    if resume_run_id:
        path = checkpoint_path(root, resume_run_id)
        ck = load_checkpoint(path)
        if not same_spec(from_dict(ck["config"]), cfg):  # the execution may differ
            raise ConfigError(f"--resume: run {resume_run_id} was trained with another config")
        state.restore(ck, path)
        run_id = resume_run_id
        tracker.reopen(run_id)
    else:
        if run_id is None:
            run_id = start_run(tracker, cfg, experiment, run_name, tags)
        tracker.log_inputs(run_id, [describe_split(cfg, "train", train_set),
                                    describe_split(cfg, "test", tests[""])])
    train_model = model if dist is None else nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    ck_path = checkpoint_path(root, run_id)
    return _Loop(cfg, tracker, run_id, state, train_set, tests, train_model, ck_path,
                 run_name or f"{cfg.data.name}/{cfg.model.name}", progress, checkpoint_every_s,
                 dist, rank, world, t_start,
                 saved=f"after epoch {state.epoch}" if ck_path.exists() else "",
                 last_save=time.monotonic(), device=device)


def _epoch(loop: _Loop, epoch: int) -> bool:
    """Train and evaluate one epoch (from where a checkpoint cut it, if it did); True when
    ``train.max_steps`` is reached."""
    st, tc = loop.state, loop.cfg.train
    t0 = time.time()
    st.model.train()
    # running sums: loss, hits, rows; and the same over the log_every window
    # (and predictions: one per sequence, or per word for GRID)
    run = {"loss": 0.0, "hits": 0.0, "n": 0, "p": 0, "wloss": 0.0, "whits": 0.0, "wn": 0, "wp": 0}
    first = 0
    if st.partial is not None and st.partial["epoch"] == epoch:  # resume inside it
        st.gen.set_state(st.partial["generator"])
        first, run = st.partial["batch"], dict(st.partial["sums"])
        t0 -= st.partial["seconds"]
    st.partial = None
    # event data: a fresh rho drop every epoch; fresh generated data (the authors' frequency
    # tasks): new train and test samples every epoch
    for split in (loop.train_set, *loop.tests.values()):
        split.set_epoch(epoch)  # a no-op for data that do not change
    epoch_gen = st.gen.get_state()  # the batches below are drawn from this state
    groups = batches(len(loop.train_set), tc.batch_size, st.gen,
                     loop.train_set.lengths if tc.bucket else None)
    bar = _bar(len(groups), f"{loop.label} epoch {epoch}/{tc.epochs}",
               loop.progress and loop.rank == 0, initial=first)
    # the batches are built in worker threads ahead of the step that uses them (pinned and
    # copied asynchronously on CUDA), the same batches in the same order as built here
    ahead = Prefetcher(loop.train_set, groups, loop.device, rank=loop.rank, world=loop.world,
                       start=first)
    for i, part, b in ahead:
        _batch(loop, epoch, i, groups, run, part, b)
        bar.update(1)
        bar.set_postfix(loss=f"{run['loss'] / run['n']:.4f}")
        _maybe_save_within(loop, epoch, i, run, epoch_gen, t0)
        if tc.max_steps and st.step >= tc.max_steps:
            break
    bar.close()
    # recurrent batch norm: population statistics of the final weights (issue 22)
    refresh_statistics(st.model, (loop.train_set.batch(g).to(loop.device).inputs
                                  for g in groups[-REFRESH_BATCHES:]))
    metrics = _epoch_metrics(loop, run, t0)
    loop.tracker.log_metrics(loop.run_id, metrics, epoch)
    st.epochs.append(metrics)
    st.epoch = epoch
    loop.save()
    if reduce_values(loop.dist, float(loop.stop.signum is not None),
                     device=loop.device)[0]:  # a signal during eval
        raise Stopped(loop.stop.signum or signal.SIGTERM)
    return bool(tc.max_steps and st.step >= tc.max_steps)


def _batch(loop: _Loop, epoch: int, i: int, groups: list, run: dict, part, b) -> None:
    """One optimiser step on batch ``i`` (``b``: this rank's rows ``part`` of it, on the
    device; a rank left without rows runs the whole batch with weight 0, since DDP needs
    every rank's backward), its sums added to ``run`` (over all ranks)."""
    st, tc, world = loop.state, loop.cfg.train, loop.world
    idx = groups[i]
    # each rank's mean is weighted by its share, so DDP's gradient average is the mean over
    # the global batch, equal to a single process
    loss, h, npred = train_step(st.model, st.opt, b, tc, loop.train_model,
                                len(part) * world / len(idx))
    st.step += 1
    n_rows = len(part)
    lsum, hsum, nsum, psum, asked = reduce_values(
        loop.dist, float(loss.detach()) * n_rows, h if n_rows else 0.0, n_rows,
        npred if n_rows else 0, float(loop.stop.signum is not None), device=loop.device)
    run["asked"] = asked
    if not math.isfinite(lsum):
        raise NonFiniteLoss(
            f"non-finite loss ({lsum / max(nsum, 1):g}) at step {st.step} (epoch {epoch}, "
            f"batch {i + 1}/{len(groups)}); last finite loss {loop.last_loss:.4g}; learning "
            f"rate {tc.lr:g}. Run {loop.run_id[:8]} is FAILED; "
            + (f"its last checkpoint ({loop.saved}) stays: {loop.ck_path}" if loop.saved
               else "no checkpoint was written yet"))
    loop.last_loss = lsum / max(nsum, 1)
    for k, v in (("loss", lsum), ("hits", hsum), ("n", nsum), ("p", psum)):
        run[k] += v
        run["w" + k] += v
    if tc.log_every and st.step % tc.log_every == 0:
        m = {"step_train_loss": run["wloss"] / run["wn"]}
        if loop.train_set.task == "classification":
            m["step_train_acc"] = 100.0 * run["whits"] / run["wp"]
        loop.tracker.log_metrics(loop.run_id, m, st.step)
        run.update(wloss=0.0, whits=0.0, wn=0, wp=0)


def _maybe_save_within(loop: _Loop, epoch: int, i: int, run: dict, epoch_gen, t0: float):
    """Checkpoint inside the epoch when a signal asked for it (then stop) or when
    ``checkpoint_every_s`` has passed since the last checkpoint."""
    asked = run.pop("asked", 0.0)
    due = loop.checkpoint_every_s is not None and \
        time.monotonic() - loop.last_save >= loop.checkpoint_every_s
    if asked or due:
        loop.save({"epoch": epoch, "batch": i + 1, "generator": epoch_gen, "sums": dict(run),
                   "seconds": time.time() - t0})
        if asked:
            raise Stopped(loop.stop.signum or signal.SIGTERM)


def _epoch_metrics(loop: _Loop, run: dict, t0: float) -> dict[str, float]:
    """The epoch's training sums and the evaluation on the test split and under each of the
    artifact's test-time conditions (``<label>/<metric>``)."""
    tc = loop.cfg.train
    metrics = {"train_loss": run["loss"] / run["n"], "epoch_time_s": time.time() - t0}
    if loop.train_set.task == "classification":
        metrics["train_acc"] = 100.0 * run["hits"] / run["p"]
    for cond, data in loop.tests.items():
        res = evaluate(loop.state.model, data, tc.eval_batch_size, loop.device)
        metrics.update({f"{cond}/{k}" if cond else k: v for k, v in res.items()})
    return metrics


def _bar(total: int, desc: str, enabled: bool, initial: int = 0):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True,
                initial=initial)
