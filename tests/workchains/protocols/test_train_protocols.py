"""Builder-level tests of the ``les.train.base`` protocols: one regression per protocol, overrides, options."""

import io

import pytest

from aiida_les.data.dataset import LesDatasetData
from aiida_les.utils.resources import gpu_options
from les_model.nn.mace_options import MPNN_ONLY
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


@pytest.mark.parametrize('backbone', ['mpnn', 'mace'])
@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_protocol(fixture_code, dataset, protocol, backbone, serialize_builder, data_regression):
    """Each protocol gives, for each short-range host, a builder whose configuration les_model accepts."""
    code = fixture_code('les.train')
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, protocol=protocol, backbone=backbone)
    inputs = {**builder.train._inputs(prune=True), 'dataset': dataset}
    from aiida_les.calculations.train import LesTrainCalculation

    assert LesTrainCalculation.check_config(inputs) is None
    model = builder.train.config['model']
    assert model['backbone'] == backbone
    # each host gets only its own settings: the other backbone would refuse them
    assert ('mace' in model) == (backbone == 'mace')
    assert not set(model) & ({*MPNN_ONLY, 'n_features'} if backbone == 'mace' else set())
    data_regression.check(serialize_builder(builder))


def test_available_backbones():
    assert LesTrainBaseWorkChain.get_available_backbones() == ['mace', 'mpnn']
    # without a backbone the protocols keep this project's host, with the same settings as before the option existed
    model = LesTrainBaseWorkChain.get_protocol_inputs('fast')['train']['config']['model']
    assert model['backbone'] == 'mpnn'
    assert (model['n_features'], model['n_interactions'], model['readout_hidden']) == (8, 1, 8)


def test_backbone_from_overrides(fixture_code, dataset):
    """``train.config.model.backbone`` in the overrides selects the host preset as the argument does; other host
    overrides merge over the preset.
    """
    code = fixture_code('les.train')
    overrides = {'train': {'config': {'model': {'backbone': 'mace', 'mace': {'correlation': 3}}}}}
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, protocol='fast', overrides=overrides)
    model = builder.train.config.get_dict()['model']
    preset = LesTrainBaseWorkChain.get_protocol_inputs('fast', backbone='mace')['train']['config']['model']
    assert model == {**preset, 'mace': {**preset['mace'], 'correlation': 3}}
    with pytest.raises(ValueError, match='backbone `mpnn` contradicts'):
        LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, overrides=overrides, backbone='mpnn')
    with pytest.raises(ValueError, match='Unknown backbone `nequip`'):
        LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, backbone='nequip')


@pytest.mark.parametrize(
    ('model', 'match'),
    [
        ({'mace': {'max_l': 2}}, "unknown key 'max_l'; allowed keys are"),
        ({'mace': {'r_max': 6.0}}, 'mace.r_max is set by the LES model: use model.cutoff'),
        (
            {'n_interactions': 3},
            'n_interactions .* applies to the mpnn backbone only; with mace use mace.num_interactions',
        ),
    ],
)
def test_bad_mace_settings_refused_at_submission(fixture_code, dataset, model, match):
    """A bad MACE setting in the overrides is refused by the validator of ``les.train.base``: nothing runs."""
    from aiida.engine import run_get_node

    code = fixture_code('les.train')
    overrides = {'train': {'config': {'model': model}}}
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(code, dataset, overrides=overrides, backbone='mace')
    with pytest.raises(ValueError, match=match):
        run_get_node(builder)


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
