"""The exploration schedule: runs per stage, per-seed schedules, advancing, and refusal of bad schedules."""

import pytest

from workchains.active_learning.schedule import MdRun, check_schedule, md_run_config, md_runs, n_stages, next_stage

STAGES = [{'temperatures': [300.0]}, {'temperatures': [300.0, 600.0], 'pressure': 1000.0}]


def test_empty_schedule_is_one_nvt_stage_of_the_temperatures():
    assert n_stages([], ['a', 'b'], [300.0, 450.0]) == 1
    runs = md_runs([], 0, ['a', 'b'], [300.0, 450.0])
    assert runs == [MdRun('a', 300.0), MdRun('a', 450.0), MdRun('b', 300.0), MdRun('b', 450.0)]
    assert runs[0].suffix == 'a_300K'  # the call-link labels of campaigns before schedules
    assert md_run_config(300.0, None) == {'temperature': 300.0}


def test_stages_and_per_seed_schedules():
    assert [run.suffix for run in md_runs(STAGES, 1, ['box'], [])] == ['box_300K_1000bar', 'box_600K_1000bar']
    assert md_run_config(600.0, 1000.0) == {
        'temperature': 600.0,
        'ensemble': 'npt',
        'barostat': 'mtk',
        'pressure': 1000.0,
    }
    per_seed = {'box': STAGES}  # the molecule keeps `temperatures`, one stage
    assert n_stages(per_seed, ['box', 'molecule'], [250.0]) == 2
    runs = md_runs(per_seed, 1, ['box', 'molecule'], [250.0])
    assert runs[-1] == MdRun('molecule', 250.0)  # a shorter schedule stays at its last stage
    assert md_runs(STAGES, 5, ['box'], []) == md_runs(STAGES, 1, ['box'], [])


@pytest.mark.parametrize(
    ('stage', 'fraction', 'expected'),
    [(0, 0.95, 1), (0, 0.5, 0), (0, None, 0), (1, 1.0, 1)],  # the last stage (1 of 2) stays
)
def test_next_stage(stage, fraction, expected):
    assert next_stage(stage, fraction, stages=2, advance_fraction=0.9) == expected


@pytest.mark.parametrize(
    ('schedule', 'message'),
    [
        ({'nope': STAGES}, 'unknown seeds'),
        ([], None),
        ('hot', 'must be a list of stages'),
        ([{'temperatures': []}], 'non-empty list of kelvin'),
        ([{'temperatures': [-5]}], 'positive numbers'),
        ([{'temperatures': [300], 'pressure': 'high'}], 'must be a number'),
        ([{'temperatures': [300], 'pressures': 1}], 'optional `pressure`'),
        ({'molecule': [{'temperatures': [300], 'pressure': 1.0}]}, 'periodic in three directions'),
    ],
)
def test_bad_schedules_are_refused(schedule, message):
    error = check_schedule(schedule, {'box': True, 'molecule': False})
    assert error is None if message is None else message in error
