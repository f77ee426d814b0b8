"""The ragged store: round trip, atomic publication, clear errors."""

import numpy as np
import pytest

from plstm_repro.data.store import Store, StoreError, StoreWriter

TABLES = {"events": {"x": "u1", "t": "<u4"}, "video": {"frame": ("u1", (2, 3))}}


def write(path, n=3, fail_at=None):
    rng = np.random.default_rng(0)
    want = []
    with StoreWriter(path, TABLES, {"label": "i2"}) as w:
        for i in range(n):
            if i == fail_at:
                raise RuntimeError("interrupted")
            L, F = int(rng.integers(0, 6)), int(rng.integers(1, 3))
            ev = {"x": rng.integers(0, 34, L), "t": np.sort(rng.integers(0, 2**20, L))}
            vid = {"frame": rng.integers(0, 256, (F, 2, 3))}
            w.add(f"Train/{i % 10}/{i:05d}.bin", {"label": i % 10}, events=ev, video=vid)
            want.append((ev, vid))
        w.commit({"skipped": 0})
    return want


def test_round_trip(tmp_path):
    want = write(tmp_path / "s", n=5)
    s = Store(tmp_path / "s")
    assert len(s) == 5 and s.info == {"skipped": 0}
    assert s.names[3] == "Train/3/00003.bin" and s.records["label"].tolist() == [0, 1, 2, 3, 4]
    assert s.lengths("events").tolist() == [len(w[0]["x"]) for w in want]
    got = s.gather("events", [4, 0, 4])
    for j, i in enumerate([4, 0, 4]):
        assert np.array_equal(got["x"][j], want[i][0]["x"]) and got["x"][j].dtype == np.uint8
        assert np.array_equal(got["t"][j], want[i][0]["t"])
    frames = s.gather("video", [2])["frame"][0]
    assert frames.shape[1:] == (2, 3) and np.array_equal(frames, want[2][1]["frame"])


def test_interrupted_write_leaves_no_store(tmp_path):
    with pytest.raises(RuntimeError):
        write(tmp_path / "s", n=5, fail_at=3)
    assert not Store.exists(tmp_path / "s") and list(tmp_path.iterdir()) == []
    with pytest.raises(StoreError, match="meta.json missing"):
        Store(tmp_path / "s")


def test_commit_replaces_an_older_store(tmp_path):
    write(tmp_path / "s", n=2)
    write(tmp_path / "s", n=4)
    assert len(Store(tmp_path / "s")) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_bad_rows_are_refused(tmp_path):
    with StoreWriter(tmp_path / "s", TABLES, {"label": "i2"}) as w:
        with pytest.raises(ValueError, match="events.x .*outside uint8"):
            w.add("a", {"label": 1}, events={"x": np.array([300]), "t": np.array([1])},
                  video={"frame": np.zeros((1, 2, 3))})
        with pytest.raises(ValueError, match="rows equal"):
            w.add("a", {"label": 1}, events={"x": np.array([3]), "t": np.array([1, 2])},
                  video={"frame": np.zeros((1, 2, 3))})
        with pytest.raises(ValueError, match="expected tables"):
            w.add("a", {"label": 1}, events={"x": np.array([3]), "t": np.array([1])})
        w.abort()
