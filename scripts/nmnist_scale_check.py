"""Memory and time of N-MNIST training at paper scale, without the dataset.

Builds a store of N-MNIST's size (60,000 training recordings, ~5,000 events each: what
preprocessing writes) by repeating the synthetic-nmnist recordings, then trains each of Table 1's
models for a number of steps through the project's own fit(), and reports: peak resident memory,
time per step, the time to materialise a batch (store -> padded tensors, rho drop included)
against the step, the share of a step outside the recurrence (data, embedding, loss), and the
time per epoch extrapolated to 60,000 recordings. The numbers are about speed and memory only:
the data are copies of synthetic recordings, not N-MNIST.

    python scripts/nmnist_scale_check.py --steps 30 [--models phased_lstm,bn_lstm,cnn,lstm]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_store(src_root: Path, out_root: Path, n: int) -> Path:
    """A train store of ``n`` recordings cycling through the synthetic ones (streamed)."""
    from plstm_repro.data.nmnist import EVENT_TABLE, NMNIST, SYNTHETIC
    from plstm_repro.data.store import Store, StoreWriter

    src = Store(SYNTHETIC.store_path(src_root, "train"))
    for split, count in (("train", n), ("test", max(1, n // 6))):
        path = NMNIST.store_path(out_root, split)
        if Store.exists(path) and len(Store(path)) == count:
            continue
        with StoreWriter(path, EVENT_TABLE, {"label": "u1"}) as w:
            for i in range(count):
                j = i % len(src)
                ev = {k: v[0] for k, v in src.gather("events", [j]).items()}
                w.add(f"copy/{i}", {"label": int(src.records["label"][j])}, events=ev)
            w.commit({"note": "copies of synthetic-nmnist recordings, for timing only"})
    return out_root


def measure(model_name: str, root: Path, steps: int) -> dict:
    from plstm_repro.data import load_split
    from plstm_repro.experiments import ARTIFACTS
    from plstm_repro.train import batches, loss_and_hits, make_model

    art = ARTIFACTS["table1"]
    var = next(v for v in art.variants if v.overrides["model.name"] == model_name) \
        if model_name != "lstm" else None
    over = dict(var.overrides) if var else {"model.name": "lstm", "model.time_scale": 0.01}
    cfg = art.config("paper", {**over, "data.root": str(root), "seed": 0})
    train = load_split(cfg.data, "train", 0)
    train.set_epoch(1)
    model = make_model(cfg, train.input_size, train.num_outputs, train)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    groups = batches(len(train), 32, torch.Generator().manual_seed(0), train.lengths)
    t_data, t_step, t_rnn, events = [], [], [], []
    rnn = getattr(model, "rnn", None)
    timed = {}
    if rnn is not None:  # time the recurrence alone, inside the same step
        def pre(*_):
            timed["t0"] = time.perf_counter()

        def post(*_):
            timed["fwd"] = time.perf_counter() - timed["t0"]
        rnn.register_forward_pre_hook(pre)
        rnn.register_forward_hook(post)
    for i, idx in enumerate(groups[:steps + 2]):
        t0 = time.perf_counter()
        b = train.batch(idx)
        t1 = time.perf_counter()
        out = model(*b.inputs)
        loss, _, _ = loss_and_hits(out, b)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if i >= 2:  # warm-up (and the kernels' one-time build) excluded
            t_data.append(t1 - t0)
            t_step.append(t2 - t1)
            t_rnn.append(timed.get("fwd", 0.0))
            events.append(int(b.lengths.sum()))
    step, data = float(np.median(t_step)), float(np.median(t_data))
    per_epoch = (step + data) * 60000 / 32  # N-MNIST: 60,000 training recordings
    return {"model": model_name, "steps": steps, "median_step_s": round(step, 4),
            "median_batch_s": round(data, 4), "batch_over_step": round(data / step, 4),
            "mean_events_per_batch": int(np.mean(events)),
            "rnn_forward_share_of_step": round(float(np.median(t_rnn)) / step, 3)
            if rnn is not None else None,
            "epoch_minutes_at_60000": round(per_epoch / 60, 1),
            "peak_rss_mb": round(rss_mb(), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--models", default="phased_lstm,bn_lstm,cnn,lstm")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--data", default="data", help="root holding SyntheticNMNIST")
    ap.add_argument("--work", default=None, help="where to build the big store (default: tmp)")
    a = ap.parse_args()
    from plstm_repro.config import DataConfig
    from plstm_repro.data import ensure_generated

    ensure_generated(DataConfig(name="synthetic-nmnist", root=a.data))
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="nmnist-scale-"))
    t0 = time.time()
    big_store(Path(a.data), work, a.n)
    print(f"store of {a.n} recordings ready in {time.time() - t0:.0f} s at {work}", flush=True)
    for m in a.models.split(","):
        # each model in its own process would isolate peak RSS; one process reports the
        # running peak, which bounds every model's
        print(json.dumps(measure(m, work, a.steps)), flush=True)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
