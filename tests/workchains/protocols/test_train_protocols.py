"""Builder-level tests of the ``les.train.base`` protocols: one regression per protocol, overrides, options."""

import io

import pytest

from aiida_les.data.dataset import LesDatasetData
from aiida_les.utils.resources import gpu_options
from workchains.train.base import LesTrainBaseWorkChain

DATASET = b"""2
Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"
H 0.0 0.0 0.0 0.1 0.0 0.0
H 0.0 0.0 0.74 -0.1 0.0 0.0
"""


@pytest.fixture
def dataset():
    return LesDatasetData(io.BytesIO(DATASET))


def test_available_protocols():
    assert set(LesTrainBaseWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    assert LesTrainBaseWorkChain.get_default_protocol() == 'balanced'


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_protocol(fixture_code, dataset, protocol, serialize_builder, data_regression):
    """Each protocol gives a builder whose configuration les_model accepts."""
    code = fixture_code('les.train')
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, protocol=protocol)
    inputs = {**builder.train._inputs(prune=True), 'dataset': dataset}
    from aiida_les.calculations.train import LesTrainCalculation

    assert LesTrainCalculation.check_config(inputs) is None
    data_regression.check(serialize_builder(builder))


def test_overrides_and_options(fixture_code, dataset):
    code = fixture_code('les.train')
    overrides = {'train': {'config': {'epochs': 7, 'model': {'cutoff': 3.5}}}, 'max_iterations': 2}
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(
        code, dataset, protocol='fast', overrides=overrides, options=gpu_options(max_wallclock_seconds=1200)
    )
    config = builder.train.config.get_dict()
    assert config['epochs'] == 7
    assert config['model']['cutoff'] == 3.5
    assert config['model']['n_features'] == 8  # the rest of the fast model survives the merge
    assert builder.max_iterations.value == 2
    options = builder.train.metadata.options
    assert options['device'] == 'cuda'
    assert options['custom_scheduler_commands'] == '#SBATCH --gres=gpu:1'
    assert options['max_wallclock_seconds'] == 1200


def test_unknown_protocol_and_override(fixture_code, dataset):
    code = fixture_code('les.train')
    with pytest.raises(ValueError, match='Unknown protocol `quick`'):
        LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, protocol='quick')
    with pytest.raises(ValueError, match='Unknown override key `trian`'):
        LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, overrides={'trian': {}})


def test_template_without_dataset(fixture_code):
    """A builder used as a template (the active-learning workchain) may leave the dataset unset."""
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(fixture_code('les.train'), None, protocol='fast')
    assert 'dataset' not in builder
    assert builder.train.config['epochs'] == 2
