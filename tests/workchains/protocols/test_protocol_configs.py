"""Every les_model configuration in the YAML protocols passes ``les_model.config`` (without building a builder).

Each protocol's ``train.config`` (merged over ``default_inputs``, for each backbone), ``md.config`` and the campaign's
``evaluate.config`` are completed with the file names the CalcJob sets itself (``placeholder_files``) and checked with
:func:`les_model.config.validate_config`: a key the configuration sections do not know, a wrong type or a value out of
range in a protocol file fails here, naming the protocol.
"""

import pytest
import yaml

from aiida_les.calculations.evaluate import LesEvaluateCalculation
from aiida_les.calculations.md import LesMdCalculation
from aiida_les.calculations.train import LesTrainCalculation
from aiida_les.utils.dicts import recursive_merge
from les_model.config import TrainConfig, validate_config
from workchains.md.base import LesMdBaseWorkChain
from workchains.protocols.utils import PROTOCOL_DIRECTORY
from workchains.train.base import LesTrainBaseWorkChain

#: Inputs that make the CalcJobs give every file key a placeholder (validation set, warm start).
ALL_FILES = {'validation_dataset': None, 'parent_model': None}


def _errors(calculation, config: dict) -> list[str]:
    return validate_config({**config, **calculation.placeholder_files(ALL_FILES)}, calculation._KIND)


def _train_cases():
    protocols = LesTrainBaseWorkChain.get_available_protocols()
    return [(p, b) for p in protocols for b in LesTrainBaseWorkChain.get_available_backbones()]


@pytest.mark.parametrize(('protocol', 'backbone'), _train_cases())
def test_train_protocol_configs_are_valid(protocol, backbone):
    config = LesTrainBaseWorkChain.get_protocol_inputs(protocol, backbone=backbone)['train']['config']
    assert config['model']['backbone'] == backbone
    assert _errors(LesTrainCalculation, config) == []


@pytest.mark.parametrize('protocol', sorted(LesMdBaseWorkChain.get_available_protocols()))
def test_md_protocol_configs_are_valid(protocol):
    config = LesMdBaseWorkChain.get_protocol_inputs(protocol)['md']['config']
    assert config['steps'] > 0
    assert _errors(LesMdCalculation, config) == []


def test_campaign_evaluate_configs_are_valid():
    """The campaign protocol file is read directly (default_inputs merged under each protocol)."""
    content = yaml.safe_load((PROTOCOL_DIRECTORY / 'active_learning.yaml').read_text())
    assert content['protocols']
    for name, protocol in content['protocols'].items():
        inputs = recursive_merge(content['default_inputs'], protocol)
        assert _errors(LesEvaluateCalculation, inputs['evaluate'].get('config', {})) == [], name


def test_a_protocol_mistake_is_caught():
    """The check is not vacuous: a misspelt key, a string for a number and an out-of-range value are reported."""
    config = LesTrainBaseWorkChain.get_protocol_inputs('fast', backbone='mpnn')['train']['config']
    bad = {**config, 'epoch': 2, 'lr': '1e-3', 'model': {**config['model'], 'cutoff': 0.0}}
    assert _errors(LesTrainCalculation, bad) == [
        f"TrainConfig: unknown keys ['epoch']; allowed keys are {sorted(TrainConfig.model_fields)}",
        'TrainConfig.model: cutoff must be > 0, got 0.0',
        "TrainConfig.lr: expected a number, got '1e-3'",
    ]
