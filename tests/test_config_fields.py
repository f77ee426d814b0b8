"""Issue 18: the config fields each model and each dataset uses, declared once and checked
against what ``make_model`` and the loaders read; a field a config's model or dataset does not
use is refused in one line; artifacts give each variant only the fields it uses; the spec hash
of a run stored before (its params carrying such fields) is that of the same grid point now."""

from __future__ import annotations

import types

import pytest

from plstm_repro.config import (
    RunConfig,
    apply_overrides,
    flat,
    from_dict,
    from_params,
    spec_hash,
    to_dict,
)
from plstm_repro.config_fields import FUSION_FIELDS, MODEL_FIELDS, owned
from plstm_repro.data.registry import REGISTRY
from plstm_repro.errors import ConfigError
from plstm_repro.experiments import ARTIFACTS


class Reads:
    """A config section that records the names read from it."""

    def __init__(self, obj):
        self._obj, self.read = obj, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._obj, name)


def _model_reads(model: str, arch: str | None) -> set[str]:
    from plstm_repro.training.build import make_model

    dataset = "grid" if arch else "sines"
    small = {"model.hidden_size": 4} if model != "cnn" else {}
    cfg = apply_overrides(RunConfig(), {"data.name": dataset, "model.name": model, **small})
    rec = Reads(cfg.model)
    data = types.SimpleNamespace(arch=arch, sensor=(34, 34), num_indices=0,
                                 clocks={"video": (40.0, 0.0), "audio": (10.0, 0.0)})
    make_model(types.SimpleNamespace(model=rec, data=cfg.data, seed=0), 3, 2, data)
    return rec.read - {"name"}


@pytest.mark.parametrize("model", list(MODEL_FIELDS))
def test_each_model_declares_the_fields_make_model_reads(model):
    assert _model_reads(model, None) == set(MODEL_FIELDS[model])


@pytest.mark.parametrize("cell", list(FUSION_FIELDS))
def test_the_fusion_network_declares_the_fields_make_model_reads(cell):
    assert _model_reads(cell, "grid_fusion") == set(FUSION_FIELDS[cell])


def _data_reads(name: str, root) -> set[str]:
    """The data.* fields the dataset's loader reads, n_train / n_test included when the size it
    is given changes what it returns."""
    spec = REGISTRY[name]
    cfg = apply_overrides(RunConfig(), {"data.name": name, "data.root": str(root)}).data
    rec = Reads(cfg)
    sizes = {len(spec.function("load")(rec, "train", n, 0)) for n in (3, 4)}
    return (rec.read | ({"n_train", "n_test"} if len(sizes) > 1 else set())) - {"name", "root"}


def test_each_dataset_declares_the_fields_its_loader_reads(tmp_path):
    from test_av_fusion import fake_grid
    from test_data_mnist import fake_mnist
    from test_nmnist import write_tree

    from plstm_repro.data.nmnist import download_nmnist, preprocess_nmnist

    fake_mnist(tmp_path / "mnist")
    write_tree(tmp_path / "src", per_digit=(4, 1), corrupt=False)
    download_nmnist(tmp_path, from_dir=tmp_path / "src", progress=False, echo=lambda s: None)
    preprocess_nmnist(tmp_path, progress=False, echo=lambda s: None)
    fake_grid(tmp_path, n=(8, 4))
    fake_grid(tmp_path, folder="SyntheticGRID", n=(8, 4))
    loaders = {}
    for name, spec in REGISTRY.items():
        if name == "synthetic-nmnist":  # nmnist's loader on another store (a minute to make)
            assert spec.load.split(":")[0] == REGISTRY["nmnist"].load.split(":")[0]
            assert spec.fields == REGISTRY["nmnist"].fields
            continue
        loaders[name] = _data_reads(name, tmp_path)
        assert loaders[name] == set(spec.fields), name
    assert loaders["digits"] == set()  # one fixed split: data.n_train does not size it


def test_the_splits_need_the_network_their_dataset_declares(tmp_path):
    from test_av_fusion import fake_grid

    from plstm_repro.data import load_split

    fake_grid(tmp_path, n=(4, 2))
    for name in ("grid", "sines", "adding", "digits"):
        sizes = {"data.n_train": 4, "data.n_test": 2} if name != "digits" else {}
        cfg = apply_overrides(RunConfig(), {"data.name": name, "data.root": str(tmp_path),
                                            **sizes})
        assert (load_split(cfg.data, "train", 0).arch or "") == REGISTRY[name].arch


@pytest.mark.parametrize("sets, says", [
    ({"model.name": "lstm", "model.tau_init": (1.0, 3.0)},
     ("model.tau_init=(1.0, 3.0): the model lstm does not use model.tau_init; its fields: "
      "model.hidden_size")),
    ({"data.name": "nmnist", "model.name": "cnn", "model.hidden_size": 8},
     "the model cnn does not use model.hidden_size; its fields: none but model.name"),
    ({"data.name": "grid", "model.name": "lstm", "model.r_on": 1.0},
     ("the model lstm in grid's audio-visual network does not use model.r_on; its fields: "
      "model.hidden_size, model.time_scale")),
    ({"data.name": "adding", "data.rho": 0.5},
     ("the dataset adding does not use data.rho; its fields: data.n_train, data.n_test, "
      "data.min_len, data.max_len")),
    ({"data.name": "digits", "data.n_train": 10}, "its fields: none but data.name"),
    ({"model.name": "phased_gru", "model.peephole": True}, "phased_gru does not use"),
])
def test_a_field_the_model_or_dataset_does_not_use_is_refused_in_one_line(sets, says):
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), sets)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_execution_keys_and_train_fields_are_taken_everywhere():
    for model in MODEL_FIELDS:
        apply_overrides(RunConfig(), {"data.name": "digits", "model.name": model,
                                      "train.eval_batch_size": 7, "train.device": "meta",
                                      "data.root": "/elsewhere", "train.log_every": 3,
                                      "train.bucket": True, "train.max_steps": 5, "seed": 4})


def test_the_cli_refuses_an_unused_field_before_any_run_exists(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from plstm_repro.cli import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = CliRunner().invoke(app, ["train", "sines", "--model", "lstm", "--set",
                                   "model.tau_init=1,3", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "the model lstm does not use model.tau_init" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "mlflow.db").exists()


def test_every_shared_artifact_setting_belongs_to_some_variant():
    """An artifact's base and scale presets go to each variant only where its model and dataset
    use them; a setting that no variant uses is a declaration error."""
    for art in ARTIFACTS.values():
        if not art.variants:
            continue
        models = [str(v.overrides.get("model.name", RunConfig().model.name))
                  for v in art.variants]
        for where, overrides in [("base", art.base)] + [
                (f"scale {sc}", s.overrides) for sc, s in art.scales.items()]:
            for key in overrides:
                assert any(owned(key, art.dataset, m) for m in models), (art.id, where, key)


def test_artifact_variants_get_only_the_shared_fields_they_use():
    by_label = {v.label: cfg for v, _, _, cfg in ARTIFACTS["table1"].runs("smoke")}
    assert by_label["CNN"].model == RunConfig(
        model=RunConfig().model.__class__(name="cnn")).model  # no hidden size, no tau
    assert by_label["Phased LSTM"].model.tau_init == (100.0, 100.0)
    assert by_label["BN-LSTM"].model.tau_init == (0.0, 3.0)
    grid = {v.label: cfg for v, _, _, cfg in ARTIFACTS["fig6c"].runs("smoke")}
    assert grid["LSTM"].model.r_on == 0.05 and grid["Phased LSTM"].model.r_on == 1.0
    assert {c.model.time_scale for c in grid.values()} == {1e-3}


# Grid points that carried fields their model does not use (the artifact gave every variant the
# same base): those fields as the code before issue 18 item 3 logged them, and the spec hash it
# computed for the point (main at 9fb034a). Their hash changes; their old params recompute to it.
CARRIED = {
    ("fig3d", "smoke", "LSTM"): ({"model.bn": "input", "model.learn_r_on": True,
                                  "model.shift_max": 100.0, "model.tau_init": (1.0, 3.0)},
                                 "s1-2af2cd42272d614f"),
    ("table1", "smoke", "CNN"): ({"model.embed_dim": 40, "model.hidden_size": 8,
                                 "model.tau_dist": "uniform", "model.tau_init": (100.0, 100.0)},
                                "s1-37448ba43613b47e"),
    ("fig6c", "smoke", "BN-LSTM"): ({"model.r_on": 1.0}, "s1-032393f1b6cdb222"),
}
# points that carried none: the hash main at 9fb034a computed, unchanged
KEPT = {("fig4b", "smoke", "LSTM"): "s1-cbcfde9269f1cc08",
        ("fig3d", "paper-text", "LSTM"): "s1-507613d488eda043",
        ("table1", "smoke", "Phased LSTM"): "s1-ceab598ebc96d34b"}


def _point(aid: str, scale: str, label: str) -> RunConfig:
    return next(c for v, _, _, c in ARTIFACTS[aid].runs(scale) if v.label == label)


def _old_params(cfg: RunConfig, carried: dict) -> dict[str, str]:
    return {k: str(v) for k, v in {**flat(cfg), **carried}.items()}


@pytest.mark.parametrize("key", list(CARRIED))
def test_a_run_logged_with_unused_fields_has_the_grid_points_hash(key):
    carried, old_hash = CARRIED[key]
    cfg = _point(*key)
    assert spec_hash(cfg) != old_hash  # the point lost fields its model does not use
    old = _old_params(cfg, carried)
    assert from_params(old) == cfg and spec_hash(from_params(old)) == spec_hash(cfg)
    ck = to_dict(cfg)  # a checkpoint's config, made before
    for k, v in carried.items():
        sec, name = k.split(".")
        ck[sec][name] = list(v) if isinstance(v, tuple) else v
    assert from_dict(ck) == cfg
    with pytest.raises(ConfigError, match="does not use"):  # never silently for user input
        apply_overrides(cfg, carried)


@pytest.mark.parametrize("key", list(KEPT))
def test_grid_points_without_unused_fields_keep_their_hash(key):
    assert spec_hash(_point(*key)) == KEPT[key]


def test_a_run_stored_the_old_way_counts_and_is_skipped(tmp_path):
    from plstm_repro import results
    from plstm_repro.sweep.lifecycle import decide
    from plstm_repro.tracking import FINISHED, MlflowTracker

    tracker = MlflowTracker(root=tmp_path)
    art = ARTIFACTS["fig6c"]
    cfg = _point("fig6c", "smoke", "BN-LSTM")
    rid = tracker.start("fig6c", "old", _old_params(cfg, CARRIED["fig6c", "smoke", "BN-LSTM"][0]),
                        {"spec_hash": CARRIED["fig6c", "smoke", "BN-LSTM"][1]})
    tracker.end(rid, FINISHED)
    chosen, size = results.counted(tracker.runs("fig6c"), art, "smoke")
    assert [r.info.run_id for r in chosen] == [rid] and size == 6
    d = decide(tracker, "fig6c", cfg, tmp_path, lambda tags: None, exclusive=False)
    assert (d.action, d.run_id) == ("skip", rid)


def test_a_checkpoint_made_the_old_way_resumes(tmp_path):
    import torch

    from plstm_repro.layout import checkpoint_path
    from plstm_repro.train import fit
    from plstm_repro.training.checkpoints import save_checkpoint

    cfg = apply_overrides(RunConfig(), {"model.name": "lstm", "data.n_train": 16,
                                        "data.n_test": 8, "train.epochs": 1,
                                        "model.hidden_size": 4, "train.batch_size": 8})
    first = fit(cfg, root=tmp_path, progress=False)
    path = checkpoint_path(tmp_path, first.run_id)
    ck = torch.load(path, weights_only=True)
    ck["config"]["model"]["tau_init"] = [1.0, 3.0]  # as the code before logged an LSTM's
    save_checkpoint(path, **ck)
    again = fit(cfg, root=tmp_path, progress=False, resume_run_id=first.run_id)
    assert again.metrics == first.metrics


def test_a_grid_config_gets_the_datasets_time_scale_and_the_network_honours_it():
    """Issue 18 item 5: GRID declares time_scale 1e-3 (time in seconds); a GRID config built
    without it gets it, hashed as the artifact's explicit 1e-3, and the fusion network is given
    model.time_scale (it ignored the field before)."""
    from plstm_repro.training.build import make_model

    cfg = apply_overrides(RunConfig(), {"data.name": "grid", "model.name": "lstm"})
    explicit = apply_overrides(RunConfig(), {"data.name": "grid", "model.name": "lstm",
                                             "model.time_scale": 1e-3})
    assert cfg.model.time_scale == 1e-3 and spec_hash(cfg) == spec_hash(explicit)
    assert apply_overrides(cfg, {"data.name": "sines"}).model.time_scale == 1.0  # left behind
    own = apply_overrides(RunConfig(), {"data.name": "grid", "model.time_scale": 0.01,
                                        "model.hidden_size": 4})
    assert own.model.time_scale == 0.01  # the user's value wins
    data = types.SimpleNamespace(arch="grid_fusion", clocks=None)
    assert make_model(own, 39, 5, data).time_scale == 0.01


def test_a_new_merged1_design_is_a_new_grid_point():
    """GRID's Phased LSTM network now draws Merged-1's periods from U(40, 200) ms: runs of the
    U(10, 1000) network (logged before model.merged1_tau existed) must not count for it, while
    the LSTM network's points, which have no Merged-1 time gates, keep their hash."""
    from plstm_repro.config import from_params, spec_hash

    new = _point("fig6c", "smoke", "Phased LSTM")
    assert new.model.merged1_tau == (40.0, 200.0)
    old = {k: v for k, v in _old_params(new, {}).items() if k != "model.merged1_tau"}
    assert spec_hash(from_params(old)) == "s1-bbeec651bd4dbe12"  # main at 9fb034a
    assert spec_hash(new) != "s1-bbeec651bd4dbe12"
    lstm = _point("fig6c", "smoke", "LSTM")  # not its field: not part of its identity
    logged = _old_params(lstm, {"model.merged1_tau": (10.0, 1000.0)})
    assert spec_hash(from_params(logged)) == spec_hash(lstm)
    # a run logged before the field existed reads back (the field at its shared default)
    before = {k: v for k, v in _old_params(lstm, {}).items() if k != "model.merged1_tau"}
    assert spec_hash(from_params(before)) == spec_hash(lstm)
    from plstm_repro.config import DataConfig, ModelConfig

    RunConfig(data=DataConfig(name="grid"), model=ModelConfig(name="lstm"))  # all defaults
