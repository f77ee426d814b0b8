"""Typed overrides, config round trips, and the artifact declarations."""

import dataclasses

import pytest

from plstm_repro.config import RunConfig, apply_overrides, config_hash, flat, from_dict, to_dict
from plstm_repro.experiments import ARTIFACTS, SCALES
from plstm_repro.runner import labels_for, resolve_train_config


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
    assert len(runs) == 3 * 3 * 5
    for _, cond, _, cfg in runs:
        assert (cfg.data.n_train, cfg.data.n_test, cfg.train.batch_size, cfg.train.epochs) == \
            (5000, 500, 32, 70)
        assert cfg.model.hidden_size == 110 and cfg.train.grad_clip == 10.0
        assert cfg.data.sampling == cond.label
    assert {r[3].model.name for r in runs} == {"phased_lstm", "bn_lstm", "lstm"}


def test_fig4b_varies_tau_ranges():
    taus = {cfg.model.tau_init for v, _, _, cfg in ARTIFACTS["fig4b"].runs("paper")
            if v.label != "LSTM"}
    assert taus == {(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)}


@pytest.mark.parametrize("art", [a for a in ARTIFACTS.values() if a.variants])
@pytest.mark.parametrize("scale", SCALES)
def test_every_declared_run_is_labelled_back(art, scale):
    for var, cond, _, cfg in art.runs(scale):
        assert labels_for(art, cfg) == (var.label, cond.label)


def test_train_command_reads_the_artifact_settings():
    cfg, art = resolve_train_config("sines", "bn", "paper", 4, ["data.sampling=highres"])
    assert art.id == "fig3d" and cfg.model.name == "bn_lstm" and cfg.seed == 4
    assert cfg.train.epochs == 70 and cfg.data.sampling == "highres"
    assert labels_for(art, cfg) == ("BN-LSTM", "highres")


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
