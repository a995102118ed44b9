"""Tests for :class:`aiida_les.data.model.LesModelData`."""

import hashlib
import io

import pytest

from aiida_les.data.model import LesModelData
from les_model import __version__


def test_attributes_and_checksum(tmp_path):
    content = b'not really a model, but bytes all the same'
    filepath = tmp_path / 'model.pt'
    filepath.write_bytes(content)
    node = LesModelData(filepath, model_config={'cutoff': 5.0}, species=['Na', 'Cl']).store()
    assert node.sha256 == hashlib.sha256(content).hexdigest()
    assert node.les_model_version == __version__
    assert node.model_config == {'cutoff': 5.0}
    assert node.base.attributes.get('species') == ['Na', 'Cl']
    assert node.filename == 'model.pt'
    node.verify()


def test_empty_file_refused():
    with pytest.raises(ValueError, match='empty'):
        LesModelData(io.BytesIO(b''))


def test_real_model_file_fills_attributes_from_its_header(tmp_path):
    """A file written by les_model gives its version, configuration and species to the node."""
    from les_model.config import ModelConfig
    from les_model.io import save_model
    from les_model.nn.model import LesModel

    tiny = {'n_features': 4, 'n_radial': 4, 'readout_hidden': 4, 'charge_hidden': 4, 'n_interactions': 1}
    model = LesModel(ModelConfig(cutoff=3.5, **tiny), species=[11, 17])
    node = LesModelData(save_model(model, tmp_path / 'model.pt'))
    assert node.les_model_version == __version__
    assert node.model_config['cutoff'] == 3.5
    assert node.base.attributes.get('species') == ['Na', 'Cl']
