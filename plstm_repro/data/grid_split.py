"""GRID utterances behind the batch interface every dataset shares (sec. 3.4, Fig. 6).

One sample is one whole utterance (about 3 s): its video stream (48x48 face crops every 40 ms)
and its audio stream (39-d MFCC every 10 ms, "hi", or every 40 ms, "lo"), each with its own
timestamps in ms, and its words (the vocabulary index of each word and when it ends). The
preprocessed store (:mod:`plstm_repro.data.grid`, same store as N-MNIST's events) is read one
batch at a time, as :class:`~plstm_repro.data.events.EventSplit` reads events.

Modalities: ``modalities`` = "both", "audio" or "video" zeroes the other stream (the test-time
conditions of Fig. 6c); in training, ``modality_dropout`` = p zeroes one of the two streams in a
share p of the utterances (audio or video alike: p/2 each, drawn per utterance and epoch from a
keyed generator, so a run repeats and resumes), since audio alone already gives > 98%.
MFCCs are standardised per coefficient with statistics of the training store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .base import IGNORE
from .store import Store

MODALITIES = ("both", "audio", "video")
AUDIO_TABLES = {"hi": "mfcc_hi", "lo": "mfcc_lo"}
_TEST_EPOCH = 2 ** 31 - 1


@dataclass(frozen=True)
class GridBatch:
    """A batch of utterances: both streams padded to their longest, the words padded with
    IGNORE labels. ``inputs`` is what the fusion model takes."""

    video: Tensor  # [B, Tv, 1, 48, 48] float32
    video_t: Tensor  # [B, Tv] float64 ms
    video_len: Tensor  # [B]
    audio: Tensor  # [B, Ta, 39] float32
    audio_t: Tensor  # [B, Ta] float64 ms
    audio_len: Tensor  # [B]
    word_end: Tensor  # [B, W] float64 ms
    y: Tensor  # [B, W] int64, IGNORE past each utterance's words
    task: str = "classification"
    num_outputs: int = 51

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return (self.video, self.video_t, self.video_len, self.audio, self.audio_t,
                self.audio_len, self.word_end)

    def to(self, device) -> GridBatch:
        if str(device) == "cpu" and self.video.device.type == "cpu":
            return self
        return GridBatch(*(v.to(device) for v in (*self.inputs, self.y)), self.task,
                         self.num_outputs)


def mfcc_stats(store: Store, table: str, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per coefficient over the first ``n`` utterances of a (training) store."""
    feats = store.gather(table, range(min(n, len(store))), ["feat"])["feat"]
    allf = np.concatenate([f for f in feats if len(f)]).astype(np.float64)
    return allf.mean(0).astype(np.float32), np.maximum(allf.std(0), 1e-6).astype(np.float32)


class GridSplit:
    """Utterances ``indices`` of a GRID store."""

    task = "classification"
    time_unit = "ms"
    arch = "grid_fusion"  # the model this data needs (make_model builds it around the cell)
    sensor = None  # the Split protocol's optional parts this kind lacks
    num_indices = 0
    digest = None

    def __init__(self, store: Store, indices: np.ndarray | None = None, *, audio: str = "hi",
                 modalities: str = "both", modality_dropout: float = 0.0, seed: int = 0,
                 train: bool = False, stats: tuple[np.ndarray, np.ndarray] | None = None,
                 name: str = "grid"):
        if audio not in AUDIO_TABLES:
            raise DataError(f"data.audio: expected hi (MFCC every 10 ms) or lo (every 40 ms), "
                            f"got {audio!r}")
        if modalities not in MODALITIES:
            raise DataError(f"data.modalities: expected one of {MODALITIES}, got "
                            f"{modalities!r}")
        if not 0.0 <= modality_dropout <= 1.0:
            raise DataError(f"data.modality_dropout: expected a probability, got "
                            f"{modality_dropout}")
        self.store, self.table = store, AUDIO_TABLES[audio]
        self.audio, self.modalities, self.name = audio, modalities, name
        self.dropout = modality_dropout if train else 0.0
        self.seed, self.train, self.epoch = int(seed), train, _TEST_EPOCH
        self.indices = (np.arange(len(store)) if indices is None
                        else np.asarray(indices, dtype=np.int64))
        self.mean, self.std = stats if stats is not None else mfcc_stats(store, self.table)
        self.lengths = torch.from_numpy(store.lengths(self.table)[self.indices].astype(np.int64))
        self.num_outputs = len(store.info.get("vocabulary", [])) or 51
        self.input_size = int(store.tables[self.table]["feat"][1][0])
        self.clocks = {"video": _clock(store, "video"), "audio": _clock(store, self.table)}

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        if self.train:
            self.epoch = int(epoch)

    def keep(self, utterance: int) -> tuple[bool, bool]:
        """(video kept, audio kept) for one utterance under this split's settings."""
        if self.modalities != "both":
            return self.modalities == "video", self.modalities == "audio"
        if self.dropout <= 0.0:
            return True, True
        u = np.random.default_rng([self.seed, self.epoch, int(utterance)]).random()
        if u < self.dropout / 2:
            return False, True
        if u < self.dropout:
            return True, False
        return True, True

    def batch(self, idx) -> GridBatch:
        idx = torch.as_tensor(idx).reshape(-1).tolist()
        recs = [int(self.indices[i]) for i in idx]
        vid = self.store.gather("video", recs)
        aud = self.store.gather(self.table, recs)
        words = self.store.gather("words", recs)
        B = len(recs)
        lv = np.array([len(v) for v in vid["t"]])
        la = np.array([len(a) for a in aud["t"]])
        lw = np.array([len(w) for w in words["word"]])
        if (lv == 0).any() or (la == 0).any() or (lw == 0).any():
            bad = [self.store.names[r] for r, a, b, c in zip(recs, lv, la, lw) if 0 in (a, b, c)]
            raise DataError(f"GRID: utterances without video, audio or words: {bad}")
        video = np.zeros((B, lv.max(), 1, 48, 48), dtype=np.float32)
        audio = np.zeros((B, la.max(), self.input_size), dtype=np.float32)
        vt, at = np.zeros((B, lv.max())), np.zeros((B, la.max()))
        word_end = np.zeros((B, lw.max()))
        y = np.full((B, lw.max()), IGNORE, dtype=np.int64)
        for b, r in enumerate(recs):
            keep_v, keep_a = self.keep(r)
            if keep_v:
                video[b, :lv[b], 0] = vid["frame"][b] / 255.0
            if keep_a:
                audio[b, :la[b]] = (aud["feat"][b] - self.mean) / self.std
            vt[b, :lv[b]], at[b, :la[b]] = vid["t"][b], aud["t"][b]
            word_end[b, :lw[b]] = words["end"][b]
            y[b, :lw[b]] = words["word"][b]
        t = torch.from_numpy
        return GridBatch(t(video), t(vt), t(lv.astype(np.int64)), t(audio), t(at),
                         t(la.astype(np.int64)), t(word_end), t(y), self.task, self.num_outputs)


def _clock(store: Store, table: str) -> tuple[float, float]:
    """(period, origin) in ms of a stream's sampling times, from the first utterance: its time
    gates are aligned to these in the Phased LSTM (sec. 3.4)."""
    t = store.gather(table, [0], ["t"])["t"][0].astype(np.float64)
    if len(t) < 2:
        raise DataError(f"GRID store {store.path}: the first utterance's {table} has fewer than "
                        "2 samples; cannot tell its sampling period")
    period = float(np.median(np.diff(t)))
    return period, float(t[0] % period)


def _store(cfg, split: str) -> Store:
    from .registry import REGISTRY

    path = Path(cfg.root) / REGISTRY[cfg.name].folder / "cache" / split
    if not Store.exists(path):
        raise FileNotFoundError(
            f"{cfg.name} {split}: no preprocessed cache at {path}. Run `plstm download "
            f"{cfg.name}` (or `--from DIR`) and then `plstm preprocess {cfg.name}`.")
    return Store(path)


def load_grid(cfg, split: str, n: int, seed: int) -> GridSplit:
    """The registry's loader of ``grid`` and ``synthetic-grid`` (``cfg.name`` says which): the
    utterances of ``data.speakers``, ``n`` of them (one subset for every seed and model), with
    MFCC statistics from the train store."""
    from . import parse_speakers

    store = _store(cfg, split)
    idx = np.arange(len(store))
    speakers = parse_speakers(cfg.speakers)
    if speakers is not None:
        idx = idx[np.isin(store.records["speaker"], speakers)]
        if len(idx) == 0:
            raise DataError(f"data.speakers: none of {speakers} is in {store.path}")
    if n < len(idx):  # one subset for every seed and model
        idx = np.sort(np.random.default_rng(0).choice(idx, n, replace=False))
    train_store = store if split == "train" else _store(cfg, "train")
    stats = mfcc_stats(train_store, AUDIO_TABLES.get(cfg.audio, "mfcc_hi"))
    return GridSplit(store, idx, audio=cfg.audio, modalities=cfg.modalities,
                     modality_dropout=cfg.modality_dropout, seed=seed, train=split == "train",
                     stats=stats, name=cfg.name)
