"""synthetic-nmnist: an offline stand-in for N-MNIST with a real signal. NOT N-MNIST.

Its results are labelled synthetic everywhere and never appear in Table 1. It exists so that a
user without the dataset (and the tests) can run the whole N-MNIST path, from ``.bin`` files
through ``download --from``, ``preprocess``, training and evaluation, and see the three models
learn.

How a recording is made, after N-MNIST's own recipe (Orchard et al. 2015): one of
scikit-learn's bundled 1,797 8x8 digits is upsampled to 28x28 and placed on the 34x34 sensor,
which moves through three saccades of 100 ms each (a triangle of 3 px sides, with a seeded jitter
per recording). Every millisecond the image is resampled at its sub-pixel position; each pixel
emits an ON (OFF) event whenever its log intensity has risen (fallen) by the contrast threshold
since its last event, as a dynamic vision sensor does, with a per-pixel threshold mismatch and a
little noise. Event times are spread uniformly inside their millisecond. The events are written
as real N-MNIST ``.bin`` files (:func:`plstm_repro.data.nmnist.encode_events`; one recording in
seven carries a timestamp-overflow marker, which tonic's reader must undo) in tonic's layout, an
80/20 stratified split into ``Train/`` and ``Test/``, and then placed exactly as
``plstm download nmnist --from DIR`` places an extracted tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .nmnist import SYNTHETIC, download_nmnist, encode_events

SACCADE_MS = 100
STEPS_MS = 3 * SACCADE_MS
CORNERS = np.array([[0.0, 0.0], [1.5, 3.0], [3.0, 0.0], [0.0, 0.0]])  # (dx, dy) in pixels
THRESHOLD = 0.25  # contrast threshold on log intensity
DARK = 0.08  # background intensity (the log of 0 is -inf)


def _upsample(img8: np.ndarray) -> np.ndarray:
    """8x8 digit (0..16) -> 28x28 intensities in [0, 1], bilinear."""
    import torch

    t = torch.from_numpy(img8.astype(np.float32) / 16.0)[None, None]
    up = torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False)
    return up[0, 0].clamp(0, 1).numpy().astype(np.float64)


def _shifted(canvas: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The canvas moved by (dx[i], dy[i]) pixels for every i: [N, H, W], bilinear, background
    (0) outside. Each frame is four slices of a zero-padded canvas (the shift is the same for
    every pixel), weighted by the fractional parts."""
    H, W = canvas.shape
    m = int(np.ceil(max(np.abs(dx).max(), np.abs(dy).max()))) + 2
    P = np.pad(canvas, m)
    out = np.empty((len(dx), H, W))
    for i, (u, v) in enumerate(zip(dx, dy)):
        ix, iy = int(np.floor(u)), int(np.floor(v))
        fx, fy = u - ix, v - iy
        # out[y, x] = canvas[y - v, x - u]: rows y - iy - 1 (weight fy) and y - iy (1 - fy)
        y0, x0 = m - iy, m - ix
        a = P[y0:y0 + H, x0:x0 + W]
        b = P[y0:y0 + H, x0 - 1:x0 - 1 + W]
        c = P[y0 - 1:y0 - 1 + H, x0:x0 + W]
        d = P[y0 - 1:y0 - 1 + H, x0 - 1:x0 - 1 + W]
        out[i] = (1 - fx) * (1 - fy) * a + fx * (1 - fy) * b + (1 - fx) * fy * c + fx * fy * d
    return out


def _path(corners: np.ndarray) -> np.ndarray:
    """Sensor offset (dx, dy) at 0, 1, ..., 300 ms: straight lines between the corners."""
    ms = np.arange(STEPS_MS + 1, dtype=np.float64)
    s = np.minimum(ms // SACCADE_MS, 2).astype(int)
    frac = (ms - s * SACCADE_MS) / SACCADE_MS
    return corners[s] + frac[:, None] * (corners[s + 1] - corners[s])


def render_events(img8: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One synthetic recording of an 8x8 digit: {x, y, p, t} (t in us, sorted)."""
    canvas = np.zeros((34, 34))
    canvas[2:30, 2:30] = _upsample(img8)
    corners = CORNERS + rng.normal(0.0, 0.3, CORNERS.shape)
    corners[-1] = corners[0]
    mismatch = THRESHOLD * np.exp(rng.normal(0.0, 0.1, canvas.shape))
    path = _path(corners)
    levels = np.log(DARK + _shifted(canvas, path[:, 0], path[:, 1]))
    levels[1:] += rng.normal(0.0, 0.03, levels[1:].shape)
    ref = levels[0].copy()
    xs, ys, ps, ts = [], [], [], []
    for ms in range(1, STEPS_MS + 1):
        n = np.trunc((levels[ms] - ref) / mismatch).astype(int)  # signed threshold crossings
        yy, xx = np.nonzero(n)
        if len(yy) == 0:
            continue
        k = n[yy, xx]
        counts = np.abs(k)
        ref[yy, xx] += k * mismatch[yy, xx]
        xs.append(np.repeat(xx, counts))
        ys.append(np.repeat(yy, counts))
        ps.append(np.repeat((k > 0).astype(np.uint8), counts))
        ts.append((ms - 1) * 1000 + rng.integers(0, 1000, counts.sum()))
    x, y, p, t = (np.concatenate(v) for v in (xs, ys, ps, ts))
    order = np.argsort(t, kind="stable")
    return {"x": x[order], "y": y[order], "p": p[order], "t": t[order]}


def write_synthetic_tree(out: Path, seed: int = 0, limit: int | None = None,
                         progress: bool = True) -> dict[str, int]:
    """Write ``out/Train/<digit>/<id>.bin`` and ``out/Test/...`` (80/20, stratified).
    ``limit``: only the first ``limit`` digits (tests). Returns recordings per split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from tqdm import tqdm

    digits = load_digits()
    images, labels = digits.images, digits.target
    idx = np.arange(len(labels)) if limit is None else np.arange(min(limit, len(labels)))
    tr, te = train_test_split(idx, test_size=0.2, random_state=seed,
                              stratify=labels[idx] if limit is None else None)
    counts = {}
    for split, folder, ids in (("train", "Train", tr), ("test", "Test", te)):
        for i in tqdm(sorted(ids), desc=f"synthetic-nmnist {split}", unit="rec",
                      disable=not progress, leave=False):
            rng = np.random.default_rng([seed, int(i)])
            ev = render_events(images[i], rng)
            overflow = len(ev["t"]) // 2 if i % 7 == 3 and len(ev["t"]) > 1 else None
            if overflow is not None and ev["t"][overflow] < 2 ** 13:
                overflow = None
            path = Path(out) / folder / str(labels[i]) / f"{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_events(ev["x"], ev["y"], ev["p"], ev["t"], overflow))
        counts[split] = len(ids)
    return counts


def generate_synthetic_nmnist(root: Path | str = "data", seed: int = 0, limit: int | None = None,
                              progress: bool = True, echo=print) -> Path:
    """``plstm download synthetic-nmnist``: write the recordings, then place them through the
    same ``--from`` path as N-MNIST's extracted tree, into ``root/SyntheticNMNIST``."""
    root = Path(root)
    dest = SYNTHETIC.root(root)
    if (dest / "Train" / ".extracted").is_file() and (dest / "Test" / ".extracted").is_file():
        return dest
    tmp = root / f".synthetic-nmnist-src-{seed}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts = write_synthetic_tree(tmp, seed, limit, progress)
        echo(f"synthetic-nmnist: wrote {counts['train']} + {counts['test']} recordings "
             "(SYNTHETIC data, not N-MNIST)")
        return download_nmnist(root, from_dir=tmp, progress=progress, echo=echo,
                               source=SYNTHETIC)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download(root: Path, from_dir: Path | None, progress: bool, echo) -> str:
    """The registry's download of ``synthetic-nmnist``: generated offline, or placed from a
    folder like the real one."""
    if from_dir is None:
        return f"{SYNTHETIC.name} is in {generate_synthetic_nmnist(root, progress=progress, echo=echo)}"
    folder = download_nmnist(root, from_dir, progress, echo, SYNTHETIC)
    return f"{SYNTHETIC.name} is in {folder}; next: plstm preprocess {SYNTHETIC.name}"
