"""Sequential MNIST: each 28x28 image as a 784-step sequence of pixels.

This is the task of the seed repository (philipperemy/tensorflow-phased-lstm, mnist_phased_lstm.py:
pixels in raster order, timestamps 0..783), not an experiment of Neil et al. 2016; the paper's
event-based variant is N-MNIST (sec. 3.3). The files are the original IDX files from LeCun et al.,
fetched with :mod:`plstm_repro.data.download` from the mirrors torchvision uses, checked against
torchvision's md5 sums.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import DataError
from .base import SeqData
from .download import check_md5, download_file, place_from

# IDX dtype codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); data is big-endian
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not, told by the gzip magic bytes 1f 8b, not by the name).

    Returns an array of the header's shape in native byte order.

    Raises:
        ValueError (naming the file): bad magic number, unknown dtype code, a corrupt gzip stream,
            or a data size that does not match the header's dimensions (truncated or trailing
            bytes).
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic {raw[:4].hex() or 'missing'}, "
                        f"expected 0000 followed by a dtype code and the number of dimensions)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02x} "
                        f"(known: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have != want:
        kind = "truncated" if have < want else "trailing bytes after the data"
        raise DataError(f"{path}: {kind}: header dims {dims} of {dtype} need {want} data bytes, "
                        f"file has {have}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


class MNIST:
    """Where the MNIST files come from and how they are checked (tonic-style class attributes)."""

    name: ClassVar[str] = "mnist"
    mirrors: ClassVar[list[str]] = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    # md5 sums as in torchvision.datasets.MNIST.resources
    resources: ClassVar[list[tuple[str, str]]] = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    splits: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    num_classes: ClassVar[int] = 10

    @classmethod
    def folder(cls, root: Path) -> Path:
        return Path(root) / cls.name

    @classmethod
    def md5s(cls) -> dict[str, str]:
        return dict(cls.resources)


def download_mnist(root: Path, from_dir: Path | None = None, progress: bool = True) -> Path:
    """Fetch the four MNIST files into ``root / "mnist"`` and return that folder.

    Files already there with a good md5 are kept. With ``from_dir`` the files are copied (and
    checked) from that local folder instead of downloaded.

    Raises:
        DownloadError: a file could not be downloaded (offline, all mirrors down, bad md5); the
            message says where to put it by hand.
        FileNotFoundError / ChecksumError: with ``from_dir``, a file is missing there or corrupt.
    """
    folder = MNIST.folder(root)
    todo = [(n, m) for n, m in MNIST.resources if not check_md5(folder / n, m)]
    if from_dir is not None:
        if todo:
            place_from(Path(from_dir), [n for n, _ in todo], folder, MNIST.md5s())
        return folder
    for name, md5 in todo:
        download_file([m + name for m in MNIST.mirrors], folder / name, md5, progress,
                      dataset=MNIST.name)
    return folder


def load_mnist(root: Path, split: str, n: int | None = None) -> SeqData:
    """Sequential MNIST split from ``root / "mnist"`` (see :func:`download_mnist`).

    Args:
        root: data root holding the ``mnist`` folder.
        split: ``"train"`` (60000 images) or ``"test"`` (10000).
        n: keep only the first ``n`` images (None: all).

    Returns:
        ``SeqData`` with x [N, 784, 1] float32 = pixel / 255 in raster order, t [N, 784] float64 =
        0..783 (time unit "step"; an expanded, read-only view of one row to save memory), lengths
        all 784, y int64 labels, classification with 10 outputs.

    Raises:
        FileNotFoundError: a file is missing; the message says how to get it.
        ValueError: a file is not a valid IDX file, or images and labels disagree.
    """
    if split not in MNIST.splits:
        raise DataError(f"split must be one of {', '.join(map(repr, MNIST.splits))}, "
                        f"got split={split!r}")
    folder = MNIST.folder(root)
    paths = [folder / name for name in MNIST.splits[split]]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(
                f"MNIST file {p} not found. Run `plstm download mnist` to download it, or "
                f"`plstm download mnist --from DIR` to copy it from a folder DIR holding "
                f"{', '.join(n for n, _ in MNIST.resources)}.")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"MNIST {split}: images {images.shape} and labels {labels.shape} "
                        f"disagree (expected [N, H, W] and [N])")
    if n is not None:
        images, labels = images[:n], labels[:n]
    N = len(images)
    steps = images.shape[1] * images.shape[2]
    x = torch.from_numpy(images.reshape(N, steps, 1).astype(np.float32) / 255.0)
    t = torch.arange(steps, dtype=torch.float64).expand(N, steps)
    return SeqData(
        x=x,
        t=t,
        lengths=torch.full((N,), steps, dtype=torch.int64),
        y=torch.from_numpy(labels.astype(np.int64)),
        task="classification",
        num_outputs=MNIST.num_classes,
        time_unit="step",
    )


def load(cfg, split: str, n: int, seed: int) -> SeqData:
    """The registry's loader of ``mnist``."""
    return load_mnist(Path(cfg.root), split, n=n)


def download(root: Path, from_dir: Path | None, progress: bool, echo) -> str:
    """The registry's download of ``mnist``."""
    return f"mnist is in {download_mnist(root, from_dir)}"
