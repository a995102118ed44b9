"""Tests for :class:`aiida_les.calculations.evaluate.LesEvaluateCalculation`: input files and validation."""

import pathlib

import pytest
from aiida import orm

ENTRY_POINT = 'les.evaluate'


@pytest.fixture
def inputs(fixture_code, generate_dataset, generate_model):
    return {
        'code': fixture_code(ENTRY_POINT),
        'dataset': generate_dataset(),
        'models': {'member_0': generate_model(b'zero'), 'member_1': generate_model(b'one')},
        'metadata': {'options': {'max_wallclock_seconds': 600}},
    }


def test_default(generate_calc_job, inputs, file_regression):
    folder, calc_info = generate_calc_job(ENTRY_POINT, inputs)
    assert sorted(entry[2] for entry in calc_info.local_copy_list) == [
        'data.extxyz',
        'model_member_0.pt',
        'model_member_1.pt',
    ]
    assert sorted(calc_info.retrieve_list) == [
        'calibration.png',
        'les.err',
        'les.out',
        'metrics.json',
        'predictions.extxyz',
    ]
    file_regression.check(pathlib.Path(folder.get_abs_path('config.yaml')).read_text(), extension='.yaml')


def test_invalid_config(generate_calc_job, inputs):
    inputs['config'] = orm.Dict({'batch_size': 0})
    with pytest.raises(ValueError, match='batch_size must be > 0, got 0'):
        generate_calc_job(ENTRY_POINT, inputs)
