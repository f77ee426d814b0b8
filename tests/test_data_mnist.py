"""IDX reading and sequential MNIST loading, on small fake files in the exact on-disk format.

Nothing here uses the real MNIST data; these tests check the format handling only.
"""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from plstm_repro.data import mnist as mnist_mod
from plstm_repro.data.download import ChecksumError, DownloadError
from plstm_repro.data.mnist import MNIST, download_mnist, load_mnist, read_idx

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding: 0x0000, dtype code, ndim, big-endian uint32 dims, big-endian data."""
    code = CODES[arr.dtype.type]
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def fake_mnist(folder, n_train=12, n_test=5, seed=0, gz=True):
    """Write four fake MNIST files (random pixels) under folder; return their arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img_name, lab_name = MNIST.splits[split]
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labs = rng.integers(0, 10, n, dtype=np.uint8)
        for name, arr in ((img_name, imgs), (lab_name, labs)):
            data = idx_bytes(arr)
            (folder / name).write_bytes(gzip.compress(data) if gz else data)
        arrays[split] = (imgs, labs)
    return arrays


def test_mnist_header_layout():
    """The encoder matches the documented MNIST header: 0x00000803 for images, 0x00000801."""
    b = idx_bytes(np.zeros((60000, 28, 28), np.uint8))
    assert b[:16] == bytes.fromhex("00000803 0000ea60 0000001c 0000001c".replace(" ", ""))
    assert idx_bytes(np.zeros(10000, np.uint8))[:8] == bytes.fromhex("0000080100002710")


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    arr = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    data = idx_bytes(arr)
    p = tmp_path / "file.idx"  # no .gz in the name: gzip is told by magic bytes
    p.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(p)
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_raw_named_gz(tmp_path):
    arr = np.arange(5, dtype=np.uint8)
    p = tmp_path / "labels-idx1-ubyte.gz"  # named .gz but not compressed
    p.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(p), arr)


def test_read_idx_truncated(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    p = tmp_path / "trunc-idx3-ubyte"
    p.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated") as e:
        read_idx(p)
    assert "trunc-idx3-ubyte" in str(e.value)
    p.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)
    p.write_bytes(data[:9])  # inside the header
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)


def test_read_idx_trailing_bytes(tmp_path):
    p = tmp_path / "long"
    p.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="trailing"):
        read_idx(p)


def test_read_idx_corrupt_gzip(tmp_path):
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))[:40])
    with pytest.raises(ValueError, match=r"cut\.gz"):
        read_idx(p)


def test_read_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-magic"
    p.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="bad-magic") as e:
        read_idx(p)
    assert "not an IDX file" in str(e.value)
    p.write_bytes(b"")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(p)


def test_read_idx_bad_dtype(tmp_path):
    p = tmp_path / "bad-dtype"
    p.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="dtype code 0x07") as e:
        read_idx(p)
    assert "bad-dtype" in str(e.value)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_fake(tmp_path, gz):
    arrays = fake_mnist(tmp_path / "mnist", gz=gz)
    for split in ("train", "test"):
        d = load_mnist(tmp_path, split)
        imgs, labs = arrays[split]
        n = len(labs)
        assert d.x.shape == (n, 784, 1) and d.x.dtype == torch.float32
        assert d.t.shape == (n, 784) and d.t.dtype == torch.float64
        assert torch.equal(d.t[n - 1], torch.arange(784, dtype=torch.float64))
        assert torch.all(d.lengths == 784) and d.lengths.dtype == torch.int64
        assert d.y.dtype == torch.int64 and d.y.tolist() == labs.tolist()
        assert d.task == "classification" and d.num_outputs == 10 and d.time_unit == "step"
        # raster order, pixel / 255
        np.testing.assert_allclose(d.x[2, :, 0].numpy(), imgs[2].reshape(-1) / 255.0, rtol=1e-6)
        assert float(d.x.min()) >= 0 and float(d.x.max()) <= 1
        # batches trim and copy as for any other dataset
        b = d.batch(torch.tensor([0, 3]))
        assert b.x.shape == (2, 784, 1) and b.t.shape == (2, 784)


def test_load_mnist_n(tmp_path):
    arrays = fake_mnist(tmp_path / "mnist")
    d = load_mnist(tmp_path, "train", n=4)
    assert len(d) == 4 and d.y.tolist() == arrays["train"][1][:4].tolist()


def test_load_mnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(tmp_path, "train")
    msg = str(e.value)
    assert "plstm download mnist" in msg and "plstm download mnist --from DIR" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_load_mnist_bad_split_and_mismatch(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, "val")
    folder = tmp_path / "mnist"
    fake_mnist(folder)
    (folder / MNIST.splits["test"][1]).write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(ValueError, match="disagree"):
        load_mnist(tmp_path, "test")


def test_class_attributes():
    names = [n for n, _ in MNIST.resources]
    assert names == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert all(len(m) == 32 and int(m, 16) >= 0 for _, m in MNIST.resources)
    assert all(u.endswith("/") for u in MNIST.mirrors)


def _fake_resources(monkeypatch, src):
    """Point MNIST's md5s at the fake files in src."""
    res = [(n, hashlib.md5((src / n).read_bytes()).hexdigest()) for n, _ in MNIST.resources]
    monkeypatch.setattr(MNIST, "resources", res)


def test_download_mnist_from_dir(tmp_path, monkeypatch):
    src = tmp_path / "src"
    fake_mnist(src)
    _fake_resources(monkeypatch, src)
    folder = download_mnist(tmp_path / "root", from_dir=src, progress=False)
    assert folder == tmp_path / "root" / "mnist"
    assert len(load_mnist(tmp_path / "root", "test")) == 5


def test_download_mnist_from_dir_bad_checksum(tmp_path):
    src = tmp_path / "src"
    fake_mnist(src)  # fake files: their md5s differ from the real ones
    with pytest.raises(ChecksumError, match="idx"):
        download_mnist(tmp_path / "root", from_dir=src, progress=False)


def test_download_mnist_skips_good_files(tmp_path, monkeypatch):
    src = tmp_path / "root" / "mnist"
    fake_mnist(src)
    _fake_resources(monkeypatch, src)

    def fail(*a, **k):
        raise AssertionError("should not download")

    monkeypatch.setattr(mnist_mod, "download_file", fail)
    assert download_mnist(tmp_path / "root", progress=False) == src


def test_download_mnist_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DownloadError) as e:
        download_mnist(tmp_path, progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "plstm download mnist --from DIR" in msg
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in msg
