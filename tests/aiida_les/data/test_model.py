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


def test_get_calculator_gives_the_models_predictions(tmp_path):
    """The node's calculator is the model file's: same energy and forces as ``LesCalculator`` on the file."""
    import numpy as np
    from ase.build import bulk

    from les_model.calculator import LesCalculator
    from les_model.config import ModelConfig
    from les_model.io import save_model
    from les_model.nn.model import LesModel

    tiny = {'n_features': 4, 'n_radial': 4, 'readout_hidden': 4, 'charge_hidden': 4, 'n_interactions': 1}
    path = save_model(LesModel(ModelConfig(cutoff=3.5, **tiny), species=[11, 17]), tmp_path / 'model.pt')
    node = LesModelData(path).store()
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = LesCalculator(path, device='cpu')
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = node.get_calculator(device='cpu')
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-12)
