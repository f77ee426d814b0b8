"""Speed of the Phased LSTM and BN-LSTM paths against torch.nn.LSTM, measured in one interleaved
run.

Methods: ``nn.LSTM`` (cuDNN on CUDA); ``reference`` (PhasedLSTM's plain PyTorch loop);
``fused`` (the fused recurrence: C++ kernels on the CPU); ``compiled`` (cells/compiled.py: per
step one GEMM and one torch.compile'd pointwise kernel; the CUDA path, timed on the CPU only when
asked: it is slower there than the C++ kernels and compiles for ~30 s per shape); ``sparse``
(event-driven eval, inference only); ``naive`` (a per-step cell that recomputes the time gate in
Python ops at each step, as public ports do). On CUDA (``device="cuda"``) the methods are
nn.LSTM, reference and compiled (``fused`` is the compiled path there; sparse and naive are CPU
methods), each call synchronised before the clock stops.
BN-LSTM rows (model "BN-LSTM") time BNLSTM's ``reference`` loop and its ``fused`` kernels against
the same nn.LSTM calls; the BN-LSTM gets t as one more input feature (F + 1), as in the paper.
Modes: ``train`` = forward + backward in train() (leak on), ``infer`` = forward under no_grad in
eval(). Each repeat runs every method in turn, so machine noise hits all of them alike; each
timed call comes right after an untimed call of the same method (steady state, as
``torch.utils.benchmark`` times): the first call after another method pays for refilling the
caches that method evicted (0.25-0.4 ms on the B=1 stream, for every method), a cost of the
order the methods run in rather than of the method. The table gives medians and ratios to
nn.LSTM from the same run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from .cells import _ext
from .cells.bn_lstm import BNLSTM
from .cells.functional import gate_from_phase, phase
from .cells.phased_lstm import PhasedLSTM
from .cells.sparse import sparse_forward
from .errors import UsageError

# Timestamps are 0.1 ms apart on average; tau ~ exp(U(0, 3)) ms, so about r_on of the steps open.
# "bn": BN-LSTM rows too (the models of Fig. 3d, 4a and N-MNIST).
FULL_SHAPES = [
    {"name": "sines T=125", "B": 32, "F": 1, "H": 110, "T": 125, "modes": ("train", "infer"),
     "bn": True},
    {"name": "sines T=500", "B": 32, "F": 1, "H": 110, "T": 500, "modes": ("train", "infer"),
     "bn": True},
    {"name": "sines T=1250", "B": 32, "F": 1, "H": 110, "T": 1250, "modes": ("train", "infer"),
     "bn": True},
    {"name": "N-MNIST", "B": 32, "F": 41, "H": 110, "T": 3000, "modes": ("train", "infer"),
     "bn": True},
    {"name": "stream B=1", "B": 1, "F": 41, "H": 110, "T": 3000, "modes": ("infer",)},
    {"name": "seed MNIST", "B": 256, "F": 1, "H": 32, "T": 784, "modes": ("train", "infer")},
    # Fig. 6c's GRID network: 3 s on the 10 ms union clock; the audio layer and a merged layer
    {"name": "GRID audio", "B": 32, "F": 39, "H": 150, "T": 300, "modes": ("train", "infer"),
     "bn": True},
    {"name": "GRID merged", "B": 32, "F": 260, "H": 250, "T": 300, "modes": ("train", "infer"),
     "bn": True},
]
QUICK_SHAPES = [
    {"name": "tiny", "B": 4, "F": 2, "H": 8, "T": 20, "modes": ("train", "infer"), "bn": True},
    {"name": "tiny stream", "B": 1, "F": 2, "H": 8, "T": 30, "modes": ("infer",)},
]
METHODS = ("nn.LSTM", "reference", "fused", "compiled", "sparse", "naive")
BN_METHODS = ("nn.LSTM", "reference", "fused", "compiled")
CUDA_METHODS = ("nn.LSTM", "reference", "compiled")
MODELS = ("Phased LSTM", "BN-LSTM")


class NaiveCell(nn.Module):
    """Phased LSTM as public ports write it: nn.LSTMCell per step, the time gate recomputed
    from that step's timestamps with separate tensor ops, in a Python loop."""

    def __init__(self, input_size: int, hidden_size: int, r_on: float = 0.05, leak: float = 1e-3):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.tau = nn.Parameter(torch.exp(torch.empty(hidden_size).uniform_(0, 3)))
        self.shift = nn.Parameter(torch.rand(hidden_size) * self.tau.detach())
        self.r_on, self.leak = torch.full((hidden_size,), r_on), leak

    def forward(self, x, t):
        B, T, _ = x.shape
        h = c = x.new_zeros(B, self.cell.hidden_size)
        outs = []
        leak = self.leak if self.training else 0.0
        for n in range(T):
            k = gate_from_phase(phase(t[:, n], self.tau, self.shift), self.r_on, leak).float()
            h_new, c_new = self.cell(x[:, n], (h, c))
            h, c = k * h_new + (1 - k) * h, k * c_new + (1 - k) * c
            outs.append(h)
        return torch.stack(outs, 1)


def _inputs(shape, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    B, T, F = shape["B"], shape["T"], shape["F"]
    x = torch.randn(B, T, F, generator=g)
    # Irregular timestamps, 0.1 ms apart on average, after a large offset (t ~ 1e6 ms).
    t = 1e6 + torch.cumsum(torch.rand(B, T, generator=g, dtype=torch.float64) * 0.2, 1)
    return x.to(device), t.to(device)


def _runners(shape, x, t, models=MODELS, methods=METHODS):
    """{(mode, method): zero-argument callable} for one shape (nn.LSTM and ``models``' methods
    among ``methods``; the BN-LSTM's are named "bn reference", "bn fused", "bn compiled")."""
    F, H = shape["F"], shape["H"]
    dev = x.device
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, batch_first=True).to(dev)
    ref = PhasedLSTM(F, H, backend="reference").to(dev)
    fus = PhasedLSTM(F, H, backend="auto").to(dev)
    fus.load_state_dict(ref.state_dict())
    comp = PhasedLSTM(F, H, backend="compiled").to(dev)
    comp.load_state_dict(ref.state_dict())
    naive = NaiveCell(F, H).to(dev)
    bn_ref = BNLSTM(F, H, backend="reference").to(dev)
    bn_fus = BNLSTM(F, H, backend="auto").to(dev)
    bn_fus.load_state_dict(bn_ref.state_dict())
    bn_comp = BNLSTM(F, H, backend="compiled").to(dev)
    bn_comp.load_state_dict(bn_ref.state_dict())

    def train(fn, model):
        def run():
            model.train()
            fn().sum().backward()
        return run

    def infer(fn, model):
        def run():
            model.eval()
            with torch.no_grad():
                fn()
        return run

    calls = {"nn.LSTM": (lstm, lambda: lstm(x)[0])}
    plstm = "Phased LSTM" in models
    if plstm:
        calls["reference"] = (ref, lambda: ref(x, t)[0])
        calls["fused"] = (fus, lambda: fus(x, t)[0])
        calls["compiled"] = (comp, lambda: comp(x, t)[0])
        calls["naive"] = (naive, lambda: naive(x, t))
    if shape.get("bn") and "BN-LSTM" in models:
        calls["bn reference"] = (bn_ref, lambda: bn_ref(x, t)[0])
        calls["bn fused"] = (bn_fus, lambda: bn_fus(x, t)[0])
        calls["bn compiled"] = (bn_comp, lambda: bn_comp(x, t)[0])
    calls = {k: v for k, v in calls.items() if k.removeprefix("bn ") in methods}
    out = {}
    for mode in shape["modes"]:
        wrap = train if mode == "train" else infer
        for name, (model, fn) in calls.items():
            out[(mode, name)] = wrap(fn, model)
        if mode == "infer" and plstm and "sparse" in methods:
            out[(mode, "sparse")] = infer(lambda: sparse_forward(fus, x, t), fus)
    return out


def _median_ms(samples):
    return 1e3 * statistics.median(samples)


def _table(results, methods=METHODS) -> str:
    head = f"{'shape':<14} {'model':<12} {'mode':<6}" + "".join(f"{m:>20}" for m in methods)
    lines = [head, "-" * len(head)]
    for row in results:
        cells = []
        for m in methods:
            r = row["methods"].get(m)
            cells.append(f"{r['median_ms']:9.1f} ms {r['ratio']:5.2f}x" if r else f"{'-':>20}")
        lines.append(f"{row['shape']:<14} {row['model']:<12} {row['mode']:<6}"
                     + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)


def _chart(results, path: Path, methods=METHODS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['shape']}\n{r['mode']}" + ("\nBN-LSTM" if r["model"] == "BN-LSTM" else "")
              for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(results)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        xs = [j + (i - len(methods) / 2 + 0.5) * width for j in range(len(results))]
        ys = [r["methods"].get(m, {}).get("ratio", 0.0) for r in results]
        ax.bar(xs, ys, width, label=m)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(results)), labels, fontsize=8)
    ax.set_ylabel("time / nn.LSTM time (log)")
    ax.set_title("Phased LSTM and BN-LSTM paths vs torch.nn.LSTM (median, same run)")
    ax.legend(fontsize=8, ncol=len(methods))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_json(data, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)  # readers never see a half-written file


def pick_shapes(names) -> list[dict]:
    """The FULL_SHAPES named ``names`` (case-insensitive), in the order given."""
    by_name = {s["name"].lower(): s for s in FULL_SHAPES}
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        raise UsageError(f"--shape: unknown {unknown}; expected some of "
                         f"{[s['name'] for s in FULL_SHAPES]}")
    return [by_name[n.lower()] for n in names]


def bench_methods(device: torch.device, compiled: bool | None = None) -> tuple[str, ...]:
    """The methods timed on ``device``: CUDA_METHODS on CUDA; on the CPU every method, the
    compiled one only when ``compiled`` is true (None: only on CUDA)."""
    if device.type == "cuda":
        return CUDA_METHODS if compiled is not False else CUDA_METHODS[:-1]
    return tuple(m for m in METHODS if m != "compiled" or compiled)


def _timer(device: torch.device):
    """perf_counter, after the device's queued work is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        def now():
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return now
    return time.perf_counter


def run_bench(shapes=None, repeats: int = 5, out_dir: Path = Path("runs/bench"),
              quick: bool = False, progress: bool = True, models=MODELS,
              device: str | torch.device = "cpu", compiled: bool | None = None) -> dict:
    """Time every method on every shape; print a table; write bench.json and bench.png.

    ``shapes``: list of dicts (name, B, F, H, T, modes, optional bn: BN-LSTM rows too) or None
    for the paper's shapes
    (``quick``: tiny shapes and 2 repeats, for tests). ``models``: rows of which models
    (``MODELS``; nn.LSTM is always timed). ``device``: cpu, cuda, cuda:N or auto (CUDA
    asked for and absent: :class:`EnvironmentProblem`, "no CUDA device is visible");
    ``compiled``: see :func:`bench_methods`. Returns the JSON-ready dict.
    """
    from .distributed import resolve_device

    device = resolve_device(str(device))
    methods = bench_methods(device, compiled)
    now = _timer(device)
    if repeats < 1:
        raise UsageError(f"repeats: expected >= 1, got {repeats}")
    if not models or set(models) - set(MODELS):
        raise UsageError(f"models: expected a non-empty subset of {MODELS}, got {models}")
    if shapes is None:
        shapes = QUICK_SHAPES if quick else FULL_SHAPES
    if quick:
        repeats = min(repeats, 2)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    ext = _ext.load_extension() is not None
    results = []
    for shape in shapes:
        results += _time_shape(shape, models, methods, repeats, now, device, say)
    data = {
        "machine": platform.processor() or platform.machine(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                 if device.type == "cuda" else ""),
        "methods": list(methods),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpp_extension": ext,
        "repeats": repeats,
        "timing": "median of timed calls, each right after an untimed call of the same method",
        "results": results,
    }
    table = _table(results, methods)
    say(table)
    _write_json(data, out_dir / "bench.json")
    _chart(results, out_dir / "bench.png", methods)
    data["table"] = table
    return data


def _time_shape(shape: dict, models, methods, repeats: int, now, device, say) -> list[dict]:
    """The rows of one shape: every method timed ``repeats`` times (each timed call right after
    an untimed one of the same method), medians and ratios to nn.LSTM per model and mode."""
    x, t = _inputs(shape, device=device)
    runs = _runners(shape, x, t, models, methods)
    for fn in runs.values():  # warm-up (and the one-time extension build)
        fn()
    samples = {key: [] for key in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            fn()  # untimed: back to this method's steady state (see the module's doc)
            start = now()
            fn()
            samples[key].append(now() - start)
    rows = []
    for mode in shape["modes"]:
        base = _median_ms(samples[(mode, "nn.LSTM")])
        for model in [m for m in models if shape.get("bn") or m == "Phased LSTM"]:
            row = {"shape": shape["name"], "model": model, "mode": mode,
                   **{k: shape[k] for k in ("B", "F", "H", "T")}, "methods": {}}
            for (m_mode, key), s in samples.items():
                # BN-LSTM rows: nn.LSTM and the "bn ..." methods, named without the prefix
                mine = key == "nn.LSTM" or key.startswith("bn ") == (model == "BN-LSTM")
                if m_mode != mode or not mine:
                    continue
                med = _median_ms(s)
                row["methods"][key.removeprefix("bn ")] = {
                    "median_ms": med, "ratio": med / base, "samples_ms": [1e3 * v for v in s]}
            if mode == "infer" and model == "Phased LSTM" and device.type == "cpu":
                fus = PhasedLSTM(shape["F"], shape["H"]).eval()
                upd = sparse_forward(fus, x[:1], t[:1])[2]
                row["updates_per_neuron"] = float(upd.mean())
            rows.append(row)
            say(f"{shape['name']:<14} {model:<12} {mode:<6} nn.LSTM {base:8.1f} ms  "
                + "  ".join(f"{m} {r['ratio']:.2f}x" for m, r in row["methods"].items()
                            if m != "nn.LSTM"))
    return rows
