"""Tests for :class:`aiida_les.parsers.md.LesMdParser` on output folders recorded from real ``les-md`` runs."""

import numpy as np
import pytest

from aiida_les.calculations.md import LesMdCalculation
from aiida_les.utils.conversion import trajectory_to_ase

ENTRY_POINT = 'les.md'
EXIT = LesMdCalculation.exit_codes


def test_default(parse_fixture, data_regression):
    """10 steps written every 5: frames at steps 0, 5, 10 with the committee uncertainty per frame and per atom."""
    results, calcfunction = parse_fixture(ENTRY_POINT, 'default')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    assert sorted(results) == ['final_structure', 'output_parameters', 'trajectory']
    trajectory = results['trajectory']
    assert trajectory.numsteps == 3
    assert list(trajectory.get_stepids()) == [0, 5, 10]
    np.testing.assert_allclose(trajectory.get_times(), [0.0, 2.5, 5.0])  # timestep 0.5 fs
    names = set(trajectory.get_arraynames())
    assert {'max_force_std', 'energy', 'temperature_K', 'forces', 'charges', 'force_std', 'min_distance'} <= names
    assert trajectory.get_array('forces').shape == (3, 8, 3)
    assert trajectory.get_array('max_force_std').shape == (3,)
    # the per-atom maximum of the committee force deviation is the frame's max_force_std (extxyz keeps 8 decimals)
    np.testing.assert_allclose(
        trajectory.get_array('force_std').reshape(3, 8).max(axis=1), trajectory.get_array('max_force_std'), atol=1e-7
    )
    frames = trajectory_to_ase(trajectory)
    assert frames[-1].arrays['forces'].shape == (8, 3)
    np.testing.assert_allclose(results['final_structure'].get_ase().positions, frames[-1].positions)
    parameters = results['output_parameters'].get_dict()
    assert parameters['stopped_by_uncertainty'] is False
    assert 'frames' not in parameters  # the per-frame list went into the trajectory
    # no pair came closer than the check radius (min_distance 0.5 Å): NaN per frame, None overall
    assert np.all(np.isnan(trajectory.get_array('min_distance')))
    assert parameters['min_distance_min'] is None
    data_regression.check(
        {key: parameters[key] for key in ('exit_name', 'steps_completed', 'frames_written', 'committee_size')}
    )


def test_stopped_by_uncertainty_is_success(parse_fixture):
    """The documented decision: an uncertainty stop is exit status 0 with ``stopped_by_uncertainty`` set."""
    results, calcfunction = parse_fixture(ENTRY_POINT, 'uncertain')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    parameters = results['output_parameters'].get_dict()
    assert parameters['stopped_by_uncertainty'] is True
    assert parameters['exit_name'] == 'MD_UNCERTAIN'
    assert results['trajectory'].get_array('max_force_std')[-1] > 1.0e-6


@pytest.mark.parametrize(('case', 'reason'), [('atoms_too_close', 'closer than 3.0'), ('energy_exploded', 'energy')])
def test_unstable_keeps_frames(parse_fixture, case, reason):
    results, calcfunction = parse_fixture(ENTRY_POINT, case)
    assert calcfunction.exit_status == EXIT.ERROR_MD_UNSTABLE.status
    assert reason in calcfunction.exit_message
    assert results['trajectory'].numsteps >= 1
    assert results['output_parameters']['stopped_by_uncertainty'] is False
    if case == 'atoms_too_close':  # rocksalt a = 5.64 Å: nearest Na-Cl distance a/2 = 2.82 Å < 3.0 Å
        assert results['output_parameters']['min_distance_min'] == pytest.approx(2.82, abs=1e-6)
        assert results['trajectory'].get_array('min_distance')[-1] == pytest.approx(2.82, abs=1e-6)


@pytest.mark.parametrize(
    ('case', 'exit_code'),
    [
        ('incompatible_model', EXIT.ERROR_INCOMPATIBLE_MODEL),
        ('no_trajectory', EXIT.ERROR_TRAJECTORY_FILE_MISSING),
    ],
)
def test_failures(parse_fixture, case, exit_code):
    _, calcfunction = parse_fixture(ENTRY_POINT, case)
    assert calcfunction.exit_status == exit_code.status


def test_killed_run_keeps_frames(parse_fixture):
    """No verdict and no summary: 312 (or the scheduler's code), with the frames written so far attached."""
    results, calcfunction = parse_fixture(ENTRY_POINT, 'killed')
    assert calcfunction.exit_status == EXIT.ERROR_OUTPUT_STDOUT_INCOMPLETE.status
    assert results['trajectory'].numsteps == 3
    _, calcfunction = parse_fixture(ENTRY_POINT, 'killed', scheduler_exit_status=120)
    assert calcfunction.exit_status == 120
