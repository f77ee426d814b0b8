"""Typed overrides, config round trips, and the artifact declarations."""

import dataclasses
from types import SimpleNamespace

import pytest

from plstm_repro.config import RunConfig, apply_overrides, config_hash, flat, from_dict, to_dict
from plstm_repro.data.registry import dataset_spec
from plstm_repro.errors import ConfigError
from plstm_repro.experiments import ARTIFACTS, SCALES, labels_for
from plstm_repro.runner import resolve_train_config


def test_typed_overrides():
    cfg = apply_overrides(RunConfig(), ["model.hidden_size=64", "model.tau_init=1,3",
                                        "model.learn_r_on=true", "train.lr=3e-4", "seed=7",
                                        "data.sampling=async"])
    assert cfg.model.hidden_size == 64 and cfg.model.tau_init == (1.0, 3.0)
    assert cfg.model.learn_r_on is True and cfg.train.lr == 3e-4 and cfg.seed == 7
    assert cfg.data.sampling == "async"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_round_trip_and_hash():
    cfg = apply_overrides(RunConfig(), {"model.tau_init": (2.0, 4.0), "seed": 2})
    assert from_dict(to_dict(cfg)) == cfg
    assert config_hash(from_dict(to_dict(cfg))) == config_hash(cfg)
    assert config_hash(cfg) != config_hash(apply_overrides(cfg, {"seed": 3}))
    assert flat(cfg)["model.tau_init"] == (2.0, 4.0) and flat(cfg)["seed"] == 2
    with pytest.raises(ValueError, match="unknown key model.nope"):
        from_dict({"model": {"nope": 1}})


def test_paper_scale_of_fig3d_is_the_authors_settings():
    runs = ARTIFACTS["fig3d"].runs("paper")
    assert len(runs) == 4 * 3 * 5  # Phased LSTM, BN-LSTM, LSTM and our LSTM with t / 100
    for _, cond, _, cfg in runs:
        assert (cfg.data.n_train, cfg.data.n_test, cfg.train.batch_size, cfg.train.epochs) == \
            (5000, 500, 32, 70)
        assert cfg.model.hidden_size == 110 and cfg.train.grad_clip == 10.0
        assert cfg.train.lr == 1e-3
        assert cfg.data.sampling == cond.label
        # freq_task.py: fresh data, their generator, tau ~ exp(U(1, 3)), s ~ U(0, 100), r_on
        # learned, lasagne's initialisation, leaky-ReLU dense layer, input batch norm
        assert cfg.data.fresh and cfg.data.protocol == "authors"
        # each model gets those of them it uses (issue 18: no model carries another's fields)
        assert (cfg.model.init, cfg.model.head) == ("authors", "leaky_relu")
        if cfg.model.name == "phased_lstm":
            assert cfg.model.tau_init == (1.0, 3.0) and cfg.model.shift_max == 100.0
            assert cfg.model.learn_r_on and cfg.model.learn_time and cfg.model.r_on == 0.05
        else:
            assert (cfg.model.tau_init, cfg.model.shift_max, cfg.model.learn_r_on) == \
                ((0.0, 3.0), 0.0, False)
        assert cfg.model.bn == ("input" if cfg.model.name == "bn_lstm" else "recurrent")
    assert {r[3].model.name for r in runs} == {"phased_lstm", "bn_lstm", "lstm"}
    scales = {r[3].model.time_scale for r in runs if r[3].model.name == "lstm"}
    assert scales == {1.0, 0.01}  # raw ms as theirs, and our labelled t / 100 variant


def test_paper_text_scale_is_the_text_reading():
    for var, _, _, cfg in ARTIFACTS["fig3d"].runs("paper-text"):
        assert not cfg.data.fresh and cfg.data.protocol == "text"
        assert cfg.model.tau_init == (0.0, 3.0) and not cfg.model.learn_r_on
        assert (cfg.model.init, cfg.model.head, cfg.model.bn) == ("torch", "linear", "recurrent")
        assert cfg.model.time_scale == (0.01 if "ours" in var.label else 1.0)
        assert cfg.train.epochs == 70
    fig4a = ARTIFACTS["fig4a"]
    assert {c.data.protocol for *_, c in fig4a.runs("paper")} == {"authors"}
    assert {c.data.sampling for *_, c in fig4a.runs("paper")} == {"async"}
    assert {c.train.epochs for *_, c in fig4a.runs("paper-text")} == {300}
    for art in (ARTIFACTS["fig3d"], fig4a):  # every choice names the line of their code
        assert art.protocol and all(":" in c.source or ".py" in c.source for c in art.protocol)


def test_fig4b_varies_tau_ranges():
    taus = {cfg.model.tau_init for v, _, _, cfg in ARTIFACTS["fig4b"].runs("paper")
            if v.label != "LSTM"}
    assert taus == {(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)}


@pytest.mark.parametrize("art", [a for a in ARTIFACTS.values() if a.variants])
@pytest.mark.parametrize("scale", SCALES + ("paper-text",))
def test_every_declared_run_is_labelled_back(art, scale):
    if scale not in art.scales:
        pytest.skip(f"{art.id} has no {scale} scale")
    for var, cond, _, cfg in art.runs(scale):
        assert labels_for(art, cfg) == (var.label, cond.label)


def test_train_command_reads_the_artifact_settings():
    cfg, art = resolve_train_config("sines", "bn", "paper", 4, ["data.sampling=highres"])
    assert art.id == "fig3d" and cfg.model.name == "bn_lstm" and cfg.seed == 4
    assert cfg.train.epochs == 70 and cfg.data.sampling == "highres"
    assert labels_for(art, cfg) == ("BN-LSTM", "highres")


def test_table1_bn_lstm_is_the_authors_input_normalised_lstm():
    """Table 1's BN-LSTM (and so `plstm train nmnist --model bn`) normalises its inputs over
    batch and time, as the authors' BN-LSTM layer does (their recurrent-batch-norm reading is
    --set model.bn=recurrent); the model built from it is an InputBNLSTM."""
    from plstm_repro.cells import BNLSTM, InputBNLSTM
    from plstm_repro.training.build import make_model

    for dataset in ("nmnist", "synthetic-nmnist"):
        cfg, art = resolve_train_config(dataset, "bn", "quick", 0, [])
        assert cfg.model.bn == "input" and cfg.model.time_scale == 0.01, dataset
        assert any(c.overrides == {"model.bn": "input"} for c in art.protocol)
    events = SimpleNamespace(arch="sequence", num_indices=34 * 34)  # what make_model reads
    assert isinstance(make_model(cfg, 2, 10, events).rnn, InputBNLSTM)
    own, _ = resolve_train_config("nmnist", "bn", "quick", 0, ["model.bn=recurrent"])
    assert own.model.bn == "recurrent"
    assert isinstance(make_model(own, 2, 10, events).rnn, BNLSTM)
    # the other Table 1 models do not carry the field
    for model in ("phased", "cnn"):
        cfg, _ = resolve_train_config("nmnist", model, "quick", 0, [])
        assert cfg.model.bn == RunConfig().model.bn, model


def test_train_command_runs_the_artifacts_variant_of_the_model():
    """Issue 22: `plstm train nmnist --model bn` is Table 1's BN-LSTM (time in units of 100 ms,
    label BN-LSTM), for every dataset with an artifact and every model it declares; a model the
    artifact lacks, or a dataset without one, gets the model alone."""
    cfg, art = resolve_train_config("nmnist", "bn", "quick", 0, [])
    assert cfg.model.time_scale == 0.01 and labels_for(art, cfg)[0] == "BN-LSTM"
    for dataset in ("sines", "sines2", "adding", "mnist", "digits", "nmnist", "synthetic-nmnist",
                    "grid", "synthetic-grid"):
        art = resolve_train_config(dataset, "lstm", "quick", 0, [])[1]
        names = {v.overrides.get("model.name") for v in art.variants}
        for var in art.variants:
            model = var.overrides.get("model.name")
            first = next(v for v in art.variants if v.overrides.get("model.name") == model)
            cfg, _ = resolve_train_config(dataset, model, "quick", 0, [])
            assert cfg == art.config("quick", {**first.overrides, "seed": 0}), (dataset, model)
            assert labels_for(art, cfg)[0] == first.label
        if "phased_gru" not in names and dataset_spec(dataset).arch != "grid_fusion":
            cfg, _ = resolve_train_config(dataset, "phased_gru", "quick", 0, [])
            assert cfg.model.name == "phased_gru"
        elif "phased_gru" not in names:  # GRID's network has no Phased GRU: refused when built
            with pytest.raises(ConfigError, match="audio-visual network is built around"):
                resolve_train_config(dataset, "phased_gru", "quick", 0, [])
    # the user's --set still wins over the variant's settings
    cfg, _ = resolve_train_config("nmnist", "bn", "quick", 0, ["model.time_scale=1"])
    assert cfg.model.time_scale == 1.0


def test_bucketed_batches_cover_every_sample_once_with_similar_lengths():
    import torch

    from plstm_repro.train import batches

    lengths = torch.randint(10, 1000, (1000,), generator=torch.Generator().manual_seed(0))
    plain = batches(1000, 32, torch.Generator().manual_seed(1))
    bucketed = batches(1000, 32, torch.Generator().manual_seed(1), lengths)
    for groups in (plain, bucketed):
        assert sorted(torch.cat(groups).tolist()) == list(range(1000))
    def padded(groups):
        return sum(len(g) * int(lengths[g].max()) for g in groups)

    assert padded(bucketed) < 0.7 * padded(plain)
    assert batches(1000, 32, torch.Generator().manual_seed(1), lengths)[0].tolist() == \
        bucketed[0].tolist()  # deterministic for a seed
