"""A campaign whose committee uses the MACE host (``backbone='mace'``): the training configuration it builds from the
protocols, and one real `fast` campaign with the real programs (les-train, les-md, les-eval, CP2K).
"""

import shutil

import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import molecule

from aiida_les.calculations.train import LesTrainCalculation
from les_model.nn.mace_host import MaceHost
from les_model.nn.mace_options import MPNN_ONLY
from workchains.active_learning import LesActiveLearningWorkChain
from workchains.train.base import LesTrainBaseWorkChain

pytest.importorskip('mace')


def _water():
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    return {'water': orm.StructureData(ase=atoms)}


@pytest.mark.parametrize(
    'select',
    [
        {'backbone': 'mace'},
        {'overrides': {'train': {'train': {'config': {'model': {'backbone': 'mace'}}}}}},
    ],
    ids=['argument', 'override'],
)
@pytest.mark.parametrize('protocol', ['fast', 'balanced'])
def test_campaign_builder_with_mace_host(campaign_codes, generate_workchain, protocol, select):
    """The campaign's training configuration is the train protocol's with the MACE preset of the campaign's train
    protocol: backbone mace, the `mace` options, no mpnn-only key; the campaign's validators accept it.
    """
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, _water(), protocol=protocol, **select
    )
    config = builder.train['train']['config'].get_dict()
    train_protocol = LesActiveLearningWorkChain.get_protocol_inputs(protocol)['protocols']['train']
    expected = LesTrainBaseWorkChain.get_protocol_inputs(train_protocol, backbone='mace')['train']['config']
    assert config == expected
    model = config['model']
    assert model['backbone'] == 'mace'
    assert not set(model) & {*MPNN_ONLY, 'n_features'}
    if protocol == 'fast':
        assert model['mace']['num_channels'] == 8  # the test-sized host, not the production one
    else:
        assert model['mace']['num_channels'] == 32
    # What each training job gets (the campaign adds the dataset and a per-member seed) passes les-train's checks.
    assert (
        LesTrainCalculation.check_config({**builder.train['train'], 'config': orm.Dict({**config, 'seed': 1})}) is None
    )
    process = generate_workchain('les.active_learning', builder._inputs(prune=True))
    assert process.node.pk is not None


@pytest.mark.parametrize('backbone', ['mpnn', 'mace'])
def test_demo_overrides_per_backbone(demo, campaign_codes, generate_workchain, backbone):
    """The demo's overrides carry the settings of the chosen host only, and the campaign accepts them."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, _water(), protocol='fast', overrides=demo.demo_overrides(backbone), backbone=backbone
    )
    model = builder.train['train']['config']['model']
    assert model['backbone'] == backbone
    assert model['cutoff'] == 5.0  # the demo's, over the fast protocol's 4 Å
    if backbone == 'mace':
        assert model['mace']['num_channels'] == 16
        assert not set(model) & {*MPNN_ONLY, 'n_features'}
    else:
        assert model['n_features'] == 32
        assert 'mace' not in model
    assert generate_workchain('les.active_learning', builder._inputs(prune=True)).node.pk is not None


def test_default_campaign_keeps_own_host(campaign_codes):
    """Control: without a backbone the committee uses this project's host with the protocol's mpnn settings."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(campaign_codes, _water(), protocol='fast')
    model = builder.train['train']['config']['model']
    assert model['backbone'] == 'mpnn'
    assert 'mace' not in model
    assert model['n_interactions'] == 1


@pytest.mark.slow  # 85 s on 2 shared cores (2026-12), above the default suite's minute
@pytest.mark.skipif(shutil.which('cp2k.psmp') is None, reason='CP2K (cp2k.psmp) is not installed')
def test_fast_campaign_with_mace_host(demo, codes):
    """One generation of the demo campaign on the `fast` protocol with ``backbone='mace'``: it finishes, and the
    training jobs ran with the MACE preset and produced MACE-host models that the MD and evaluation used.
    """
    builder = demo.demo_builder(protocol='fast', overrides={}, backbone='mace')
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.summary['n_generations'] == 1

    expected = LesTrainBaseWorkChain.get_protocol_inputs('fast', backbone='mace')['train']['config']['model']
    trainings = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.train']
    assert len(trainings) == 2
    for calculation in trainings:
        assert calculation.is_finished_ok
        assert calculation.inputs.config['model'] == expected

    assert len(results['models']) == 2
    for model in results['models'].values():
        assert model.base.attributes.get('model_config')['backbone'] == 'mace'
        assert isinstance(model.get_calculator(device='cpu').models[0].host, MaceHost)
    md_runs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.md']
    assert md_runs
    assert all(n.is_finished_ok for n in md_runs)
