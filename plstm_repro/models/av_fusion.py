r"""The audio-visual fusion network of sec. 3.4 (Fig. 6), whose layers run on their own clocks.

Video: face crops 1x48x48 every 40 ms -> :class:`GridVideoFrontEnd` (three 16-kernel 5x5
convolutions with 2x2 subsampling, 16x2x2 = 64 features) -> 110 recurrent units. Audio: 39-d
MFCC every 10 ms (or 40 ms) -> 150 units. Merged-1 (250) reads both stream layers, Merged-2
(250) reads Merged-1, then 51 outputs.

Every recurrent layer steps on the union of both streams' timestamps (per utterance), and each
stream's input is held from its latest sample. With Phased LSTM cells:

- the audio and video layers have fixed time gates (tau and s not learned, no leak) whose open
  phase is centred on their own input's sampling times: tau = the stream's period, r_on = 1/8,
  and s = origin - r_on tau / 2 puts each sample at the peak of the gate,
  :math:`\phi = r_{on}/2 \Rightarrow k = 1`, while every other step of the union timeline lies
  in the closed phase (k = 0): the layer updates exactly when its input arrives and keeps its
  state otherwise (eq. 11), so held inputs are never seen;
- the merged layers learn tau, drawn uniform from U(40, 200) ms (Merged-1) and U(500, 3000) ms
  (Merged-2), and s ~ U(0, tau); r_on is the artifact's declared choice (the paper gives none
  for GRID). Merged-2's range is the paper's; Merged-1's is our declared choice (the text's
  U(10, 1000) is :data:`PAPER_MERGED_TAU`): every Merged-1 period is shorter than a GRID word
  (220-300 ms), so each Merged-1 neuron opens at least once within every word and a word is
  written into the same neurons, to the same extent, wherever it falls in the sentence (with
  periods up to 1 s, which neurons are open during a word depends on when it is spoken). The
  learned time parameters are stored so that Adam moves them: tau as log(tau / 1 ms) (always
  positive, relative steps of ~lr) and s in seconds (steps of ~lr s = 1 ms), not in raw
  milliseconds, where a step of ~lr ms leaves them where they started
  (:func:`learnable_time`).

With LSTM or BN-LSTM cells the same network sees both streams on the same union clock, each
stream's last sample held, and the time (in seconds) as an extra input of every layer, as the
paper's baselines did. The Phased LSTM network gets the same time input by default (a declared
choice of Fig. 6c: a word's position in GRID's fixed grammar is read from it;
``phased_time_input=False`` leaves the time to the gates alone). The words are read out at the last union step at or before each word's
end (a word's last frame), so an utterance yields one prediction per word.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .cnn import GridVideoFrontEnd

STREAM_R_ON = 0.125  # 1/8: exact in binary, so a sample lands exactly on phi = r_on / 2
PAPER_MERGED_TAU = ((10.0, 1000.0), (500.0, 3000.0))  # ms, uniform: sec. 3.4's text
# Merged-1 below a GRID word's length (220-300 ms), Merged-2 as the text (a declared choice
# of Fig. 6c's protocol, measured there)
MERGED_TAU = ((40.0, 200.0), PAPER_MERGED_TAU[1])


class _LogTau(nn.Module):
    """tau = exp(raw) ms: positive by construction (no silent clamp of a negative period)."""

    def forward(self, raw: Tensor) -> Tensor:
        return raw.exp()

    def right_inverse(self, tau: Tensor) -> Tensor:
        return tau.log()


class _Seconds(nn.Module):
    """shift = 1000 raw ms: stored in seconds so that an Adam step (~lr) is ~1 ms."""

    def forward(self, raw: Tensor) -> Tensor:
        return raw * 1000.0

    def right_inverse(self, shift: Tensor) -> Tensor:
        return shift / 1000.0


def learnable_time(rnn: nn.Module) -> nn.Module:
    """Re-parametrise a Phased LSTM's learned tau and shift (kept in ms for the forward pass)
    so that Adam at lr 1e-3 moves them: tau by ~0.1% and s by ~1 ms per step. Buffers (fixed
    time gates) are left alone."""
    for k in range(rnn.num_layers):
        for name, unit in ((f"tau_l{k}", _LogTau), (f"shift_l{k}", _Seconds)):
            if name in rnn._parameters:
                parametrize.register_parametrization(rnn, name, unit())
    return rnn


def union_timeline(tv: Tensor, lv: Tensor, ta: Tensor, la: Tensor):
    """Per utterance, the sorted union of both streams' valid timestamps.

    Returns (tu [B, U] float64, lu [B], iv [B, U], ia [B, U]): the union times (padded with
    the last time), their count, and at every union step the index of the latest video and
    audio sample at or before it (-1 before the first).
    """
    B = tv.shape[0]
    rows = [torch.unique(torch.cat([tv[b, :lv[b]], ta[b, :la[b]]])) for b in range(B)]
    lu = torch.tensor([len(r) for r in rows], device=tv.device)
    U = int(lu.max())
    tu = torch.stack([torch.cat([r, r[-1:].expand(U - len(r))]) for r in rows])
    return tu, lu, latest(tv, lv, tu), latest(ta, la, tu)


def _padded_inf(t: Tensor, lengths: Tensor) -> Tensor:
    valid = torch.arange(t.shape[1], device=t.device) < lengths[:, None]
    return torch.where(valid, t, torch.inf).contiguous()


def latest(t: Tensor, lengths: Tensor, query: Tensor) -> Tensor:
    """[B, Q]: index of the last valid t[b] <= query[b, q], -1 when there is none."""
    return torch.searchsorted(_padded_inf(t, lengths), query.contiguous(), right=True) - 1


def hold(feat: Tensor, idx: Tensor) -> Tensor:
    """feat [B, T, F] at indices idx [B, U] (each stream's latest sample), 0 where idx < 0."""
    g = feat.gather(1, idx.clamp_min(0).unsqueeze(-1).expand(-1, -1, feat.shape[-1]))
    return torch.where((idx >= 0).unsqueeze(-1), g, 0.0)


class AudioVisualFusion(nn.Module):
    """``forward(video, video_t, video_len, audio, audio_t, audio_len, word_end)`` -> logits
    [B, W, num_outputs], one row per word (see the module's doc).

    ``cell``: "phased_lstm", "lstm" or "bn_lstm" (``bn``: "recurrent", :class:`BNLSTM`, or
    "input", the authors' :class:`InputBNLSTM`). ``clocks``: {"video": (period, origin),
    "audio": (period, origin)} in ms, the streams' sampling grids (from the data).
    """

    def __init__(self, cell: str = "phased_lstm", num_outputs: int = 51, audio_features: int = 39,
                 clocks: dict | None = None, video_hidden: int = 110, audio_hidden: int = 150,
                 merged: tuple[int, int] = (250, 250), r_on: float = 0.05, leak: float = 1e-3,
                 time_scale: float = 1e-3, merged_tau=MERGED_TAU, learn_time: bool = True,
                 phased_time_input: bool = True, bn: str = "recurrent"):
        super().__init__()
        from ..cells import BN_LSTMS, LSTM, PhasedLSTM

        if cell not in ("phased_lstm", "lstm", "bn_lstm"):
            raise ValueError(f"grid_fusion: cell must be phased_lstm, lstm or bn_lstm, got "
                             f"{cell!r}")
        if bn not in BN_LSTMS:
            raise ValueError(f"grid_fusion: bn must be recurrent or input, got {bn!r}")
        self.cell = cell
        # the time (s) as an extra input of every layer: the baselines' input; for the Phased
        # LSTM network a declared choice (Fig. 6c's protocol), the word's position in the
        # sentence being readable from it
        self.time_input = cell != "phased_lstm" or phased_time_input
        self.time_scale = time_scale
        clocks = clocks or {"video": (40.0, 0.0), "audio": (10.0, 0.0)}
        self.video_front = GridVideoFrontEnd()
        sizes = {"video": (self.video_front.out_features, video_hidden),
                 "audio": (audio_features, audio_hidden),
                 "merged1": (video_hidden + audio_hidden, merged[0]),
                 "merged2": (merged[0], merged[1])}
        self.layers = nn.ModuleDict()
        for name, (fin, hid) in sizes.items():
            if cell == "lstm":
                self.layers[name] = LSTM(fin, hid, time_scale=time_scale)
            elif cell == "bn_lstm":
                self.layers[name] = BN_LSTMS[bn](fin, hid, time_scale=time_scale)
            elif name in clocks:  # a stream layer: fixed gates on its own samples
                period, origin = clocks[name]
                rnn = PhasedLSTM(fin + self.time_input, hid, r_on=STREAM_R_ON, leak=0.0, learn_time=False,
                                 tau_init=(period, period), tau_dist="uniform")
                with torch.no_grad():
                    rnn.tau_l0.fill_(period)
                    rnn.shift_l0.fill_(origin - STREAM_R_ON * period / 2)
                self.layers[name] = rnn
            else:
                lo, hi = merged_tau[0 if name == "merged1" else 1]
                self.layers[name] = learnable_time(PhasedLSTM(
                    fin + self.time_input, hid, r_on=r_on, leak=leak, tau_init=(lo, hi), tau_dist="uniform",
                    learn_time=learn_time))
        self.head = nn.Linear(merged[1], num_outputs)

    @property
    def is_phased(self) -> bool:
        return self.cell == "phased_lstm"

    def timeline(self, video, video_t, video_len, audio, audio_t, audio_len):
        """(layer inputs of the two stream layers on the union clock, tu, lu)."""
        tu, lu, iv, ia = union_timeline(video_t, video_len, audio_t, audio_len)
        vfeat = self.video_front(video)  # [B, Tv, 64], the CNN on the video clock only
        return hold(vfeat, iv), hold(audio, ia), tu, lu

    def layer_outputs(self, video, video_t, video_len, audio, audio_t, audio_len):
        hv, ha, tu, lu = self.timeline(video, video_t, video_len, audio, audio_t, audio_len)
        ov, _ = self.layers["video"](self._timed(hv, tu), tu, lengths=lu)
        oa, _ = self.layers["audio"](self._timed(ha, tu), tu, lengths=lu)
        m1, _ = self.layers["merged1"](self._timed(torch.cat([ov, oa], -1), tu), tu, lengths=lu)
        m2, _ = self.layers["merged2"](self._timed(m1, tu), tu, lengths=lu)
        return {"video": ov, "audio": oa, "merged1": m1, "merged2": m2}, tu, lu

    def _timed(self, x: Tensor, tu: Tensor) -> Tensor:
        """A Phased LSTM layer's input with the time as its last feature (the LSTM and BN-LSTM
        cells append it themselves)."""
        if not (self.is_phased and self.time_input):
            return x
        return torch.cat([x, (tu * self.time_scale).to(x.dtype).unsqueeze(-1)], -1)

    def forward(self, video, video_t, video_len, audio, audio_t, audio_len, word_end):
        outs, tu, lu = self.layer_outputs(video, video_t, video_len, audio, audio_t, audio_len)
        # each word's last union step: the latest step at or before its end
        step = latest(tu, lu, word_end).clamp_min(0)
        m2 = outs["merged2"]
        read = m2.gather(1, step.unsqueeze(-1).expand(-1, -1, m2.shape[-1]))
        return self.head(read)

    @torch.no_grad()
    def update_stats(self, video, video_t, video_len, audio, audio_t, audio_len,
                     word_end=None) -> dict[str, float]:
        """Sums over the batch: updates per neuron of each layer (phased: steps with k > 0 at
        leak 0; others: every union step), and each stream's samples and the union steps, so
        that a stream layer's updates can be checked against its samples."""
        tu, lu, _, _ = union_timeline(video_t, video_len, audio_t, audio_len)
        out = {"samples_video": float(video_len.sum()), "samples_audio": float(audio_len.sum()),
               "union_steps": float(lu.sum())}
        mask = torch.arange(tu.shape[1], device=tu.device) < lu[:, None]
        for name, rnn in self.layers.items():
            if self.is_phased:
                saved, rnn.training = rnn.training, False  # leak 0: the test-time gate
                try:
                    k = rnn.time_gates(tu, 0, mask)
                finally:
                    rnn.training = saved
                out[f"updates_{name}"] = float((k > 0).sum()) / rnn.hidden_size
            else:
                out[f"updates_{name}"] = float(lu.sum())
        return out
