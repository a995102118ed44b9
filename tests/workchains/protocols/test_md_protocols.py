"""Builder-level tests of the ``les.md.base`` protocols: one regression per protocol, overrides."""

import io

import pytest

from aiida_les.calculations.md import LesMdCalculation
from aiida_les.data.model import LesModelData
from workchains.md.base import LesMdBaseWorkChain


def test_available_protocols():
    assert set(LesMdBaseWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_protocol(fixture_code, generate_structure, protocol, serialize_builder, data_regression):
    """Each protocol gives a builder whose configuration les_model accepts."""
    models = {'m0': LesModelData(io.BytesIO(b'model bytes'), filename='model.pt')}
    builder = LesMdBaseWorkChain.get_builder_from_protocol(
        fixture_code('les.md'), generate_structure('NaCl'), models=models, protocol=protocol
    )
    inputs = {**builder.md._inputs(prune=True), 'structure': builder.structure}
    assert LesMdCalculation.check_config(inputs) is None
    data_regression.check(serialize_builder(builder))


def test_overrides(fixture_code, generate_structure):
    overrides = {'md': {'config': {'temperature': 1200.0, 'max_force_std': 0.3}}}
    builder = LesMdBaseWorkChain.get_builder_from_protocol(
        fixture_code('les.md'), generate_structure('NaCl'), protocol='fast', overrides=overrides
    )
    config = builder.md.config.get_dict()
    assert config['temperature'] == 1200.0
    assert config['max_force_std'] == 0.3
    assert config['steps'] == 20


def test_template_without_structure(fixture_code):
    builder = LesMdBaseWorkChain.get_builder_from_protocol(fixture_code('les.md'), None, protocol='fast')
    assert 'structure' not in builder
    assert not dict(builder.md.models)
