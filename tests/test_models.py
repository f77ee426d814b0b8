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
