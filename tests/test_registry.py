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
