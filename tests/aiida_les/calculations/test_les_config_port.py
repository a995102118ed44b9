"""The ``config`` port of the les CalcJobs: its help lists the keys of the les_model section with their units."""

import pytest

from aiida_les.calculations.evaluate import LesEvaluateCalculation
from aiida_les.calculations.md import LesMdCalculation
from aiida_les.calculations.train import LesTrainCalculation
from les_model.config import MDConfig


@pytest.mark.parametrize(
    ('calculation', 'expected', 'owned'),
    [
        (LesTrainCalculation, '  model.cutoff: float, default 5.0  [Å] short-range cutoff radius', 'train_file'),
        (LesMdCalculation, '  friction: float, default 0.01  [1/fs] Langevin friction', 'structure'),
        (LesEvaluateCalculation, '  batch_size: int, default 8  [frames] per batch', 'data_file'),
    ],
)
def test_config_help_lists_the_keys_with_units(calculation, expected, owned):
    lines = calculation.spec().inputs['config'].help.splitlines()
    assert expected in lines
    # the keys the CalcJob sets itself (file names, the device) are not offered
    assert not any(line.startswith((f'  {owned}:', '  device:')) for line in lines)


def test_config_help_follows_the_field_descriptions():
    help_text = LesMdCalculation.spec().inputs['config'].help
    for name, field in MDConfig.model_fields.items():
        if name not in LesMdCalculation._OWNED_KEYS and name != 'device':
            assert f'  {name}: ' in help_text, name
            assert field.description in help_text, name
