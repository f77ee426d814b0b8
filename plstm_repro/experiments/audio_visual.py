"""Fig. 6c (sec. 3.4): GRID lip reading with the audio-visual fusion network; our declared
choices where the paper is silent and the authors published no code."""

from __future__ import annotations

from ..data.registry import GRID_MERGED1_TAU, GRID_TIME_SCALE
from .artifact import SMOKE, THREE_MODELS, Artifact, Cell, Choice, Scale, merged

# Fig. 6c (sec. 3.4): conditions are the MFCC rates, the test-time conditions the modalities.
GRID_RESOLUTIONS = (Cell("low", {"data.audio": "lo"}), Cell("high", {"data.audio": "hi"}))
MODALITY_TESTS = (Cell("video", {"data.modalities": "video"}),
                  Cell("audio", {"data.modalities": "audio"}))
# Where sec. 3.4 is silent and the authors published no GRID code: our choices, each with the
# measurement behind it (issue 22; synthetic GRID, 300 steps, seed 0, noise about +-4 points).
GRID_PROTOCOL = (
    Choice("Merged layers' r_on = 1.0, fixed (the paper gives no r_on for GRID; its other tasks "
           "use 0.05)", {"model.r_on": 1.0},
           "measured: words are read out at their ends, and at r_on 0.05 a Merged-2 neuron "
           "(tau 0.5-3 s) is open ~9 of 373 steps per utterance, last written ~3 words before "
           "the readout: audio word accuracy 16% (the word prior) vs 41 / 83 / 96% at r_on "
           "0.2 / 0.5 / 1.0 and 97% for the LSTM network; r_on learned from 0.05 only reached "
           "0.07 in 300 steps", {"model.r_on": 0.05}),
    Choice("Merged layers learn tau and s, stored as log(tau / 1 ms) and s in seconds (the "
           "forward pass sees ms): Adam at lr 1e-3 then moves tau by ~0.1% and s by ~1 ms a "
           "step, and tau stays positive; stream layers' tau and s fixed on their samples", {},
           "measured: stored in ms, Adam moved a 518.6 ms period by 1.1 ms in 1,200 steps "
           "(sec. 3.4 says the merged layers learn tau); stored in seconds one went negative"),
    Choice("The Phased LSTM network also gets the time (s) as an extra input of every layer, "
           "as the LSTM and BN-LSTM networks do (the paper gives the Phased LSTM the time "
           "through its gates only)", {},
           "measured (synthetic GRID, quick scale, 4 epochs, seed 0): GRID's fixed grammar "
           "makes a word's position worth much of the early accuracy, and only the LSTM "
           "network could read it from the time; without it the Phased LSTM network's audio "
           "accuracy was 13.9 / 20.6 / 37.2 / 53.3% and its video-only loss flat at 3.67 "
           "(LSTM: 24.4 / 25.0 / 52.2 / 61.7%, 3.63 -> 2.96); with it 13.3 / 33.9 / 56.1 / "
           "60.0% and 3.63 -> 2.83"),
    Choice("Merged-1's periods tau ~ U(40, 200) ms, all shorter than a GRID word (220-300 ms), "
           "so that each Merged-1 neuron opens within every word and a word is written into the "
           "same neurons wherever it falls in the sentence; Merged-2 keeps the text's U(500, "
           "3000) ms (the text: Merged-1 U(10, 1000) ms)", {"model.merged1_tau": GRID_MERGED1_TAU},
           "measured (synthetic GRID, quick scale, 4 epochs, seeds 0 / 1 / 2, 2026-12-05): with "
           "U(10, 1000), which Merged-1 neurons are open during a word depends on when it is "
           "spoken (coefficient of variation across utterances of a neuron's mean openness over "
           "a 250 ms word: 0.30, against 0.07 with U(40, 200)), and the network learned the "
           "ten-word digit position slowest (audio, seeds 0 / 2: 7 / 13%, LSTM network 33 / "
           "37%; with U(40, 200) 23 / 20%). Audio word accuracy at epoch 4: 60.0 / 60.0 / "
           "59.4% (mean 59.8) -> 63.9 / 63.3 / 62.8% (mean 63.3), LSTM network 61.7 / 64.4 / "
           "60.0% (mean 62.0); audio-video 60.0 / 60.0 / 58.9% (59.6) -> 64.4 / 63.3 / 62.8% "
           "(63.5), LSTM 62.8 / 62.8 / 60.6% (62.1); video-only test loss by epoch, mean of the "
           "seeds, 3.63 / 3.48 / 3.15 / 2.79 -> 3.63 / 3.30 / 2.97 / 2.80, LSTM 3.61 / 3.39 / "
           "3.08 / 2.92 (below the LSTM's from epoch 2 in seeds 0 and 2, from epoch 3 in seed 1; "
           "at epoch 1, before either learns, 0.00-0.04 above). Tried: both merged layers at "
           "U(40, 200): audio 64.4 / 61.1% (seeds 0, 1) but video-only loss 3.14 / 2.99 at "
           "epoch 4; only Merged-2 there: 62.2%, 2.88 (seed 0); merged layers open at every "
           "step (k = 1, a diagnostic): 64.4 / 60.0%, 2.96 / 2.94. Low resolution (MFCC every "
           "40 ms, seeds 0 / 1): audio 46.1 / 47.2 -> 52.8 / 50.6%, audio-video 47.8 / 47.8 -> "
           "53.3 / 50.6%, video-only loss at epoch 4 2.65 / 2.73 -> 2.66 / 2.65; there the LSTM "
           "network is still ahead on audio (63.9 / 64.4%, loss 2.91 / 2.86): not resolved. "
           "Tried there, not adopted: the Phased LSTM network's clock split into steps of at "
           "most 10 ms (its gates sampled as at high resolution): audio 59.4 / 60.0%, but the "
           "video-only loss averaged over the epochs (Fig. 6c's measure) 3.11 / 3.08 -> 3.16 / "
           "3.26, LSTM 3.25 / 3.16; at most 5 ms: 62.8 / 61.7%, 3.21 / 3.23 (high resolution, "
           "seeds 0 / 1 / 2: audio 62.8 / 63.9 / 69.4%, loss 3.26 / 3.27 / 3.18 against 3.17 / "
           "3.22 / 3.13, LSTM 3.32 / 3.24 / 3.19): each added step helps audio and costs video. "
           "Measured 2026-12-05 at low resolution (seed 0 unless said): seed 2 audio 52.2%, "
           "loss 2.63 at epoch 4 (LSTM 58.3%, 2.87), so seeds 0 / 1 / 2 average 51.9% against "
           "the LSTM's 62.2%; twice the epochs (8) keep the gap (71.7% against 80.6%, loss 2.51 "
           "against 2.80); over 16 epochs (seeds 0 / 1 / 2) it narrows, mean audio by epoch "
           "4 / 8 / 12 / 16: 51.9 / 70.2 / 83.3 / 91.9%, LSTM 62.2 / 84.1 / 93.0 / 93.7%, while "
           "the mean video-only loss stays below the LSTM's at every epoch (2.64 / 2.59 / 2.51 "
           "/ 2.50, LSTM 2.88 / 2.65 / 2.57 / 2.65); tau and s fixed (model.learn_time=false): "
           "52.2 / 48.9% (seeds 0 / 1), no change; Merged-1's gate averaged over each step's "
           "interval instead of sampled (no aliasing of the periods on the 15 / 25 ms steps): "
           "52.2%, no change; the audio layer updated at every union step (reading each held "
           "MFCC frame twice, as the LSTM network's does): 52.2 / 52.2% (seeds 0 / 1), no "
           "change; Merged-2 open at every step: 53.9%; Merged-1 open at every step (an LSTM "
           "layer): 65.6 / 61.7 / 51.1% (mean 59.5), loss 3.09 / 2.71 / 2.70 (LSTM 2.91 / "
           "2.86 / 2.87); both merged layers plain LSTM layers (seeds 0 / 1 / 2, a "
           "diagnostic): 60.0 / 60.0 / 62.8% (mean 60.9), loss 2.88 / 2.74 / 2.76, so the "
           "stream layers' fixed gates account for ~1 point of the gap and the merged layers' "
           "gates for the rest. The gap is Merged-1's time gate, whose openness averages 1/2 at r_on "
           "1: on a union clock of ~20 ms steps it halves Merged-1's updates, where at high "
           "resolution ~8 ms steps leave enough. Not the learning rate: at Adam 3e-3 for both "
           "networks (seeds 0 / 1 / 2, 2026-12-05) audio 70.6 / 63.3 / 65.0% (mean 66.3) "
           "against the LSTM network's 74.4 / 78.9 / 83.3% (78.9), video-only loss at epoch 4 "
           "2.54 / 2.62 / 2.53 against 2.75 / 2.69 / 2.65",
           {"model.merged1_tau": (10.0, 1000.0)}),
    Choice("Every layer steps on the union of the two streams' timestamps, MFCCs stamped at "
           "the end of their window: at low resolution the network steps twice per 40 ms "
           "(frames at 40 k ms, MFCCs at 25 + 40 k ms), at high resolution ~373 times per 3 s "
           "(the text: one update every 40 ms, and every 10 ms; not offered as a setting)", {},
           "measured (synthetic GRID, quick scale, seed 0, 2026-12-05), with each MFCC frame "
           "restamped onto the text's clock (15 ms later at low resolution, 5 ms at high): low "
           "resolution, audio word accuracy: Phased LSTM network 52.8 -> 26.1%, LSTM network "
           "63.9 -> 55.6%; high resolution: Phased 63.9 -> 61.1% (then a video-only loss of "
           "2.82 at epoch 4), LSTM 61.7 -> 57.8% (3.12). Both networks learn faster with the "
           "extra steps; the Phased LSTM network's merged layers lose most from fewer (see "
           "Merged-1's choice)"),
    Choice("BN-LSTM network: the authors' BN-LSTM layer in every layer, batch norm of the layer's "
           "inputs over batch and time, then a plain LSTM, as Table 1's and Fig. 3d's BN-LSTM "
           "(Cooijmans et al.'s recurrent batch norm is --set model.bn=recurrent)",
           {"model.bn": "input"},
           "their BN-LSTM layer (bnlstm.py, the freq tasks); no GRID code is public. Measured "
           "(synthetic GRID, quick scale, 2026-12-05; low / high resolution; seed 0 then seed 1): "
           "audio word accuracy at epoch 4 with input batch norm 85.0 / 83.9% and 88.3 / 86.1% "
           "(LSTM network, seed 0: 63.9 / 61.7%); with the recurrent one 50.6 / 53.3% (seed "
           "0), its video-only loss flat (3.93 -> 3.90 and 3.90 -> 3.68 over the 4 epochs); "
           "with input batch norm the video-only loss at epoch 4 is 2.80 / 2.64 and "
           "3.06 / 3.12 (Phased LSTM network, mean of seeds 0-2: 2.65 / 2.80), by epoch (mean of "
           "the 2 seeds, high resolution) 3.89 / 3.73 / 3.26 / 2.88 against the Phased LSTM "
           "network's 3.63 / 3.30 / 2.97 / 2.80 (seed 0 alone ends below it: 2.64 against 2.76)",
           {"model.bn": "recurrent"}),
)
GRID_BASE = {"data.modality_dropout": 2 / 3, "model.hidden_size": 110,
             "train.eval_batch_size": 32, "model.time_scale": GRID_TIME_SCALE,
             **merged(GRID_PROTOCOL)}
GRID_NOTES = (
    ("One sample is one utterance (~3 s); the network is read out at the last step of each word "
    "and the loss is the mean cross-entropy over the words: this is why the merged layers' "
    "periods reach 3 s."),
    ("Every layer steps on the union of both streams' timestamps; Phased LSTM stream layers have "
    "fixed gates open at their own samples only (tau = the stream's period, r_on = 1/8, no "
    "leak); the merged layers learn tau ~ U(40, 200) ms (Merged-1, shorter than a word; the "
    "text's U(10, 1000): see the choices) and U(500, 3000) ms (Merged-2, as the text; r_on: see "
    "the choices)."),
    ("LSTM and BN-LSTM: the same network on the union clock, each stream's last sample held, "
    "time in seconds as an extra input of every layer."),
    ("Training masks one modality to zero in 2/3 of the utterances (audio or video, 1/3 each); "
    "the default test uses both, the test-time conditions video only and audio only."),
    ("Not stated in the paper: epochs, batch size (32), learning rate (Adam 1e-3), the masking "
    "probabilities."),
)

FIG6C = Artifact(
    id="fig6c", paper_ref="Fig. 6c", dataset="grid", metric="video/test_loss", plot="plot_fig6c",
    title="GRID lip reading: video-only test loss over epochs (low and high resolution) and word "
          "accuracy per modality",
    variants=THREE_MODELS, conditions=GRID_RESOLUTIONS, evaluations=MODALITY_TESTS,
    base=GRID_BASE, notes=GRID_NOTES, protocol=GRID_PROTOCOL,
    protocol_from="our measurements (the paper is silent and the authors published no GRID code)",
    scales={"smoke": Scale(1, {**SMOKE.overrides, "train.eval_batch_size": 8}),
            "quick": Scale(1, {"data.speakers": "1-3", "data.n_train": 600, "data.n_test": 150,
                               "train.epochs": 4},
                           "speakers 1-3: 600 / 150 utterances, 4 epochs, 1 seed"),
            "paper": Scale(1, {"data.n_train": 10 ** 6, "data.n_test": 10 ** 6,
                               "train.epochs": 20},
                           "all 33 speakers with video, 90/10 split, 20 epochs (the paper "
                           "states no epoch count), 1 seed")},
)
