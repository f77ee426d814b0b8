"""The model zoo: every model builds, trains a few steps with falling loss; registry errors."""

import pytest
import torch

from plstm_repro.models import GridVideoFrontEnd, build_model, resolve_model_name


def fixed_batch(seed=0, B=16, T=12, F=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    t = torch.rand(B, T, generator=g, dtype=torch.float64).mul(2).cumsum(1)
    lengths = torch.randint(4, T + 1, (B,), generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    return x, t, lengths, y


def train_steps(model, inputs, y, steps=30, lr=0.02):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(*inputs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", ["lstm", "bn_lstm", "phased_lstm", "phased_gru"])
def test_sequence_models_learn(name):
    torch.manual_seed(0)
    x, t, lengths, y = fixed_batch()
    kw = {"r_on": 0.5} if name.startswith("phased") else {}
    model = build_model(name, input_size=3, num_outputs=2, hidden_size=16, **kw)
    losses = train_steps(model, (x, t, lengths), y)
    assert losses[-1] < 0.7 * losses[0], losses


def test_event_cnn_learns():
    """The frame CNN takes events like the RNNs (x, t, lengths): events in the top or the
    bottom half of the sensor, label = which half."""
    torch.manual_seed(0)
    y = torch.randint(0, 2, (16,))
    rows = torch.randint(0, 17, (16, 40)) + 17 * y[:, None]
    addr = rows * 34 + torch.randint(0, 34, (16, 40))
    x = torch.stack([addr.float(), torch.ones(16, 40)], -1)
    t, lengths = torch.arange(40.0).expand(16, 40), torch.randint(20, 41, (16,))
    model = build_model("cnn", num_outputs=2)
    losses = train_steps(model, (x, t, lengths), y, steps=30, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0], losses


def test_event_cnn_frames_count_events_and_ignore_padding():
    cnn = build_model("cnn", num_outputs=10)
    # sample 0: pixel (x=2, y=1) twice, (33, 33) once; sample 1: (0, 0) once, then padding
    # holding NaN and an address off the sensor
    x = torch.tensor([[[1 * 34 + 2, 1.0], [1 * 34 + 2, -1.0], [33 * 34 + 33, 1.0]],
                      [[0.0, 1.0], [float("nan"), 0.0], [5000.0, 0.0]]])
    f = cnn.frames(x, torch.tensor([3, 1]))
    assert f.shape == (2, 1, 34, 34) and f.sum().item() == 4
    assert f[0, 0, 1, 2] == 2 and f[0, 0, 33, 33] == 1 and f[1, 0, 0, 0] == 1
    with pytest.raises(ValueError, match="pixel addresses"):
        cnn.frames(x, torch.tensor([3, 3]))


def test_readout_all_and_embedding():
    model = build_model("phased", input_size=2, num_outputs=5, hidden_size=8, readout="all",
                        embed=(34 * 34, 40))
    x = torch.stack([torch.randint(0, 34 * 34, (3, 7)).float(), torch.randn(3, 7)], -1)
    out = model(x, torch.arange(7.0).expand(3, 7))
    assert out.shape == (3, 7, 5)
    assert model.rnn.input_size == 41  # 40-d address embedding + polarity, as N-MNIST's 41 inputs


def test_grid_front_end_shapes():
    net = GridVideoFrontEnd()
    assert net(torch.randn(2, 5, 1, 48, 48)).shape == (2, 5, 64)
    with pytest.raises(ValueError, match="frames"):
        net(torch.randn(2, 1, 32, 32))


def test_aliases_and_unknown_names():
    assert resolve_model_name("phased") == "phased_lstm"
    assert resolve_model_name("bn") == "bn_lstm"
    with pytest.raises(ValueError, match="model: unknown name 'transformer'; valid: lstm"):
        build_model("transformer")


# --- the authors' model choices (public_plstm freq_task.py, bnlstm.py) -----------------------

def test_input_bn_lstm_normalises_valid_steps_then_runs_an_lstm():
    from plstm_repro.cells import InputBNLSTM

    x, t, lengths, _ = fixed_batch(B=6, T=9, F=1)
    x[0, int(lengths[0]):] = float("nan")  # padding is never read
    m = InputBNLSTM(1, 5, time_scale=1.0).double()
    with torch.no_grad():
        m.bn.weight.copy_(torch.tensor([2.0, 0.5]))
        m.bn.bias.copy_(torch.tensor([0.1, -0.3]))
    out, (h, c) = m(x.double(), t, lengths=lengths)
    assert torch.isfinite(h).all() and torch.isfinite(c).all()
    # by hand: features (x, t) standardised over the valid steps (biased variance, eps 1e-4)
    feats = torch.cat([torch.cat([x[i, :L].double(), t[i, :L, None]], 1)
                       for i, L in enumerate(lengths.tolist())])
    mean, var = feats.mean(0), feats.var(0, unbiased=False)
    for i, L in enumerate(lengths.tolist()):
        z = (torch.cat([x[i, :L].double(), t[i, :L, None]], 1) - mean) / (var + 1e-4).sqrt()
        z = z * m.bn.weight + m.bn.bias
        ref, (hr, _) = m.lstm(z[None])
        assert torch.allclose(out[i, :L], ref[0], atol=1e-12)
        assert torch.allclose(h[0, i], hr[0, 0], atol=1e-12)
    # running statistics (momentum 0.1) are used at test time
    assert torch.allclose(m.bn.running_mean, 0.1 * mean)
    m.eval()
    out_eval, _ = m(x.double(), t, lengths=lengths)
    assert not torch.allclose(out_eval[0, :3], out[0, :3])


def test_authors_init_head_and_shift():
    from plstm_repro.config import RunConfig, apply_overrides
    from plstm_repro.train import make_model

    base = {"data.name": "sines", "model.init": "authors", "model.head": "leaky_relu",
            "model.hidden_size": 64, "seed": 3}
    own = {"phased_lstm": {"model.shift_max": 100.0, "model.tau_init": (1.0, 3.0)},
           "lstm": {}, "bn_lstm": {"model.bn": "input"}}  # each model's own fields only
    for name in ("phased_lstm", "lstm", "bn_lstm"):
        cfg = apply_overrides(RunConfig(), {**base, "model.name": name, **own[name]})
        m = make_model(cfg, 1, 2)
        rnn = m.rnn.lstm if name != "phased_lstm" else m.rnn
        H = 64
        w = rnn.weight_hh_l0
        assert w.std().item() == pytest.approx(0.1, rel=0.05) and abs(w.mean().item()) < 0.01
        b = rnn.bias_ih_l0 + rnn.bias_hh_l0
        assert torch.equal(b[:H], torch.full((H,), -0.1))  # input gate
        assert torch.equal(b[H:], torch.zeros(3 * H))  # forget, cell, output gates
        assert torch.equal(m.head.bias, torch.zeros(2))
        bound = (6 / (H + 2)) ** 0.5  # Glorot uniform
        assert m.head.weight.abs().max() <= bound and m.head.weight.abs().max() > 0.8 * bound
        if name == "phased_lstm":
            s, tau = m.rnn.shift_l0, m.rnn.tau_l0
            assert s.min() >= 0 and s.max() <= 100 and s.max() > 50 > tau.max()  # U(0, 100)
            assert tau.min() >= 2.71 and tau.max() <= 20.1  # exp(U(1, 3))
    # the leaky-ReLU head: negative logits scaled by 0.01
    m = make_model(apply_overrides(RunConfig(), {**base, "model.name": "lstm"}), 1, 2)
    x, t, lengths, _ = fixed_batch(F=1)
    with torch.no_grad():
        m.head.bias.fill_(-5.0)
        out = m(x, t, lengths)
        m.head_act = "linear"
        lin = m(x, t, lengths)
    assert torch.allclose(out, torch.where(lin > 0, lin, 0.01 * lin))
    with pytest.raises(ValueError, match="model.init"):
        make_model(apply_overrides(RunConfig(), {"model.init": "lasagne"}), 1, 2)
    with pytest.raises(ValueError, match="only the LSTM-family"):
        make_model(apply_overrides(RunConfig(), {"model.init": "authors",
                                                 "model.name": "phased_gru"}), 1, 2)


def test_update_stats_in_time_slices_equal_the_whole_gate():
    """update_stats counts the open gates (leak 0) over valid steps in slices of time; the sums
    equal those of the whole [B, T, H] gate, ragged lengths and a last partial slice included."""
    from plstm_repro.cells import PhasedLSTM
    from plstm_repro.cells.checks import valid_mask
    from plstm_repro.models.sequence import SequenceModel

    torch.manual_seed(0)
    m = SequenceModel(PhasedLSTM(3, 16, r_on=0.5, tau_init=(0.0, 2.0)), 4).train()
    T = 2 * SequenceModel.STATS_STEPS + 37
    x = torch.randn(3, T, 3)
    t = torch.rand(3, T, dtype=torch.float64).cumsum(1)
    lengths = torch.tensor([T, 5, SequenceModel.STATS_STEPS + 1])
    stats = m.update_stats(x, t, lengths)
    m.rnn.training = False
    k = m.rnn.time_gates(t, 0, valid_mask(lengths, T)).double()
    assert stats["updates_per_neuron"] == float((k > 0).sum()) / 16
    assert stats["gate_openness"] == pytest.approx(float(k.sum()) / 16, rel=1e-6)
    assert stats["steps"] == float(lengths.sum())
