"""The dataset registry agrees with the data layer it describes."""

import pytest

from plstm_repro import data
from plstm_repro.data.registry import FILES, REGISTRY, SYNTHETIC, dataset_spec, names
from plstm_repro.errors import UserError


def test_every_dataset_declared_once_as_the_data_layer_loads_it():
    assert list(REGISTRY) == list(data.DATASETS)
    assert set(names(FILES, SYNTHETIC)) == set(data.FROM_FILES)
    assert set(names(cached=True)) == {"nmnist", "synthetic-nmnist", *data.GRID_FOLDERS}
    with pytest.raises(UserError, match="dataset: unknown 'nmist'; valid: sines"):
        dataset_spec("nmist")


def test_every_spec_declares_the_functions_its_origin_needs_and_they_import():
    import inspect

    for d in REGISTRY.values():
        assert callable(d.function("load")), d.name
        assert bool(d.download) == (d.origin in (FILES, SYNTHETIC)), d.name
        assert bool(d.prepare) == d.cached, d.name
        assert bool(d.stores) == (d.origin == SYNTHETIC), d.name
        for role in ("download", "prepare", "stores"):
            if getattr(d, role):
                fn = d.function(role)
                assert callable(fn), (d.name, role)
                # what data/__init__ passes: speakers only to datasets that have them
                params = inspect.signature(fn).parameters
                assert ("speakers" in params) == (d.speakers and role != "stores"), (d.name, role)
    with pytest.raises(ValueError, match="dataset sines declares no prepare function"):
        REGISTRY["sines"].function("prepare")


def test_dispatch_goes_through_the_spec_for_every_dataset(tmp_path):
    from plstm_repro.config import DataConfig

    assert data.download_dataset("sines", tmp_path).endswith("nothing to download")
    with pytest.raises(ValueError, match="--speakers: only GRID has speakers, not mnist"):
        data.download_dataset("mnist", tmp_path, speakers="1")
    with pytest.raises(ValueError, match="preprocess: adding needs no preprocessing"):
        data.preprocess_dataset("adding", tmp_path)
    with pytest.raises(ValueError, match=r"data.fresh: only .* \(sines, sines2\) .* not adding"):
        data.load_split(DataConfig(name="adding", fresh=True), "train", 0)
    with pytest.raises(FileNotFoundError, match="synthetic-grid test: no preprocessed cache at"):
        data.load_split(DataConfig(name="synthetic-grid", root=str(tmp_path)), "test", 0)
    got = data.load_split(DataConfig(name="sines2", n_train=4), "train", 0)
    assert len(got) == 4
