"""Every split kind implements the one declared Split protocol (data/protocol.py), optional
parts included, so that fit / evaluate / make_model / describe_split read attributes instead of
probing for them."""

import numpy as np
import torch
from test_av_fusion import fake_grid

from plstm_repro.config import DataConfig
from plstm_repro.data import load_split
from plstm_repro.data.base import FreshSplit, SeqData
from plstm_repro.data.events import EventSplit
from plstm_repro.data.grid_split import GridSplit
from plstm_repro.data.nmnist import EVENT_TABLE
from plstm_repro.data.protocol import Split
from plstm_repro.data.store import Store, StoreWriter


def _event_store(path):
    rng = np.random.default_rng(0)
    with StoreWriter(path, EVENT_TABLE, {"label": "u1"}) as w:
        for i in range(4):
            n = 5 + i
            ev = {"x": rng.integers(0, 34, n), "y": rng.integers(0, 34, n),
                  "p": rng.integers(0, 2, n), "t": np.sort(rng.integers(0, 10_000, n))}
            w.add(f"r{i}", {"label": i % 2}, events=ev)
        w.commit({})
    return Store(path)


def _splits(tmp_path) -> dict:
    root = fake_grid(tmp_path / "grid", n=(4, 2))
    return {
        "SeqData": load_split(DataConfig(name="adding", n_train=3, min_len=5, max_len=6),
                              "train", 0),
        "FreshSplit": load_split(DataConfig(name="sines", fresh=True, n_train=3), "train", 0),
        "EventSplit": EventSplit(_event_store(tmp_path / "events"), train=True),
        "GridSplit": load_split(DataConfig(name="grid", root=str(root), n_train=4), "train", 0),
    }


def test_every_split_kind_implements_the_protocol_with_its_optional_parts(tmp_path):
    splits = _splits(tmp_path)
    kinds = {k: type(v) for k, v in splits.items()}
    assert kinds == {"SeqData": SeqData, "FreshSplit": FreshSplit, "EventSplit": EventSplit,
                     "GridSplit": GridSplit}
    for kind, split in splits.items():
        assert isinstance(split, Split), kind  # every member, the optional parts included
        split.set_epoch(2)  # every kind takes it (a no-op where the data do not change)
        b = split.batch(torch.tensor([0, 1]))
        assert b is not None and len(split) >= 2 and split.lengths.shape == (len(split),)
    assert splits["GridSplit"].arch == "grid_fusion" and splits["GridSplit"].clocks
    assert splits["EventSplit"].sensor == (34, 34) and splits["EventSplit"].num_indices == 34 * 34
    for kind in ("SeqData", "FreshSplit"):
        s = splits[kind]
        assert (s.arch, s.clocks, s.sensor, s.num_indices, s.digest) == (None, None, None, 0, None)


def test_what_a_split_lacks_is_not_taken_for_a_split():
    class Partial:  # a batch interface without the optional parts
        task, num_outputs, time_unit, input_size = "classification", 2, "ms", 1
        lengths = torch.ones(2, dtype=torch.int64)

        def __len__(self):
            return 2

        def batch(self, idx):
            return idx

    assert not isinstance(Partial(), Split)
