"""Tests for the :func:`aiida_les.calculations.functions.select_structures.select_structures` calcfunction."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_les.calculations.functions.select_structures import select_structures
from aiida_les.data.dataset import LesDatasetData
from aiida_les.utils.conversion import ase_to_trajectory


def _cell(rattle_seed: int, stdev: float = 0.1):
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(stdev=stdev, seed=rattle_seed)
    return atoms


def _trajectory(force_std, seeds, charge_std=None):
    frames = [_cell(seed) for seed in seeds]
    for index, atoms in enumerate(frames):
        atoms.info['max_force_std'] = force_std[index]
        if charge_std is not None:
            atoms.info['max_charge_std'] = charge_std[index]
    keys = ['max_force_std'] + (['max_charge_std'] if charge_std is not None else [])
    return ase_to_trajectory(frames, info_keys=keys)


def test_trust_window_budget_and_pooling():
    """Two trajectories pooled in label order; accurate (0.01) and failed (2.0) frames are not selected."""
    outputs, node = select_structures.run_get_node(
        parameters=orm.Dict({'budget': 2}),
        md_1=_trajectory([0.01, 0.1, 0.3], seeds=[0, 1, 2]),
        md_0=_trajectory([2.0, 0.2], seeds=[3, 4]),
    )
    assert node.is_finished_ok
    report = outputs['report'].get_dict()
    assert report['n_frames'] == 5
    expected = {'accurate': 1, 'candidate': 3, 'failed': 1, 'fallback': 0, 'duplicate': 0, 'selected': 2}
    assert report['counts'] == expected
    assert report['accurate_fraction'] == pytest.approx(0.2)
    sources = [tuple(source) for source in report['selected_sources']]
    assert len(sources) == 2
    assert set(sources) <= {('md_0', 1), ('md_1', 1), ('md_1', 2)}
    selected = outputs['selected']
    assert selected.n_structures == 2
    frames = selected.get_ase()
    assert [(a.info['source'], a.info['source_index']) for a in frames] == sources
    assert 'energy' not in selected.labels  # predictions are not labels
    assert sorted(node.base.links.get_incoming().all_link_labels()) == ['md_0', 'md_1', 'parameters']


def test_duplicates_of_the_dataset_and_of_each_other():
    """Identical frames are selected once; a frame equal to a dataset frame is not selected."""
    reference = LesDatasetData.from_ase([_cell(8)])
    outputs = select_structures(
        parameters=orm.Dict({'budget': 10}),
        reference=reference,
        md=_trajectory([0.2, 0.3, 0.25, 0.1], seeds=[7, 7, 7, 8]),
    )
    report = outputs['report'].get_dict()
    assert report['counts']['duplicate'] == 3
    assert report['counts']['selected'] == 1
    assert outputs['selected'].get_ase()[0].info['source_index'] in (0, 1, 2)


def test_charge_disagreement_makes_a_candidate():
    outputs = select_structures(
        parameters=orm.Dict({'charge_threshold': 0.1}),
        md=_trajectory([0.01, 0.01], seeds=[0, 1], charge_std=[0.2, 0.0]),
    )
    report = outputs['report'].get_dict()
    assert [tuple(s) for s in report['selected_sources']] == [('md', 0)]


def test_predictions_dataset_and_missing_uncertainty():
    """``les-eval`` predictions carry ``les_max_force_std``; a frame without any uncertainty counts as failed."""
    frames = [_cell(0), _cell(1)]
    frames[0].info['les_max_force_std'] = 0.2
    outputs = select_structures(parameters=orm.Dict({}), predictions=LesDatasetData.from_ase(frames))
    report = outputs['report'].get_dict()
    assert report['counts']['failed'] == 1
    assert [tuple(s) for s in report['selected_sources']] == [('predictions', 0)]
    np.testing.assert_allclose(report['selected_force_std'], [0.2])


def test_zero_budget_selects_nothing():
    outputs = select_structures(parameters=orm.Dict({'budget': 0}), md=_trajectory([0.2], seeds=[0]))
    assert 'selected' not in outputs
    assert outputs['report']['counts']['selected'] == 0


def test_invalid_parameters():
    trajectory = _trajectory([0.1], seeds=[0])
    with pytest.raises(ValueError, match=r"unknown parameters \['budgte'\]"):
        select_structures(parameters=orm.Dict({'budgte': 3}), md=trajectory)
    with pytest.raises(ValueError, match='lower < upper'):
        select_structures(parameters=orm.Dict({'trust_lower': 1.0, 'trust_upper': 0.5}), md=trajectory)


def test_selected_frames_carry_origin_and_charge():
    """Each selected frame names its trajectory, frame index, MD step, the caller's origin entries and its charge."""
    trajectory = _trajectory([0.2, 0.3], seeds=[0, 1])
    trajectory.set_array('total_charge', np.array([-1.0, -1.0]))
    trajectory.set_array('spin_multiplicity', np.array([2.0, 2.0]))
    trajectory.set_array('steps', np.array([0, 10]))
    origins = {'md_0': {'origin_generation': 3, 'origin_temperature_K': 450.0, 'origin_seed': 'ion'}}
    outputs = select_structures(parameters=orm.Dict({'budget': 2, 'origins': origins}), md_0=trajectory)
    frames = sorted(outputs['selected'].get_ase(), key=lambda atoms: atoms.info['origin_index'])
    assert [atoms.info['origin_md_step'] for atoms in frames] == [0, 10]
    for atoms in frames:
        assert atoms.info['origin'] == 'md'
        assert atoms.info['origin_uuid'] == trajectory.uuid
        assert (atoms.info['origin_generation'], atoms.info['origin_temperature_K']) == (3, 450.0)
        assert atoms.info['origin_seed'] == 'ion'
        assert (atoms.info['total_charge'], atoms.info['spin_multiplicity']) == (-1, 2)


def test_unknown_origin_keys_refused():
    """Origin entries other than generation, temperature and seed label are refused, naming the key."""
    origins = {'md_0': {'md_step': 3}}
    with pytest.raises(ValueError, match=r"unknown origin keys \['md_step'\] for `md_0`"):
        select_structures(parameters=orm.Dict({'origins': origins}), md_0=_trajectory([0.2], seeds=[0]))


def test_calibrated_trust_levels():
    """With ``force_std_scale`` 4 an overconfident committee's 0.02 eV/Å means 0.08 eV/Å expected error: a candidate.

    ``trust_upper`` bounds the raw deviation: 0.2 eV/Å (0.8 expected) stays a candidate, 0.6 eV/Å is failed.
    """
    trajectory = _trajectory([0.02, 0.03, 0.2, 0.6], seeds=[0, 1, 2, 3])
    raw = select_structures(parameters=orm.Dict({'budget': 5}), md=trajectory)['report'].get_dict()
    assert raw['counts'] == {'accurate': 2, 'candidate': 1, 'failed': 1, 'fallback': 0, 'duplicate': 0, 'selected': 1}
    calibrated = select_structures(parameters=orm.Dict({'budget': 5, 'force_std_scale': 4.0}), md=trajectory)
    report = calibrated['report'].get_dict()
    assert report['counts'] == {
        'accurate': 0,
        'candidate': 3,
        'failed': 1,
        'fallback': 0,
        'duplicate': 0,
        'selected': 3,
    }
    assert sorted(report['selected_expected_force_error']) == pytest.approx([0.08, 0.12, 0.8])
    assert sorted(report['selected_force_std']) == pytest.approx([0.02, 0.03, 0.2])
    for bad in (0.0, -1.0, 'x'):  # a Dict cannot hold NaN
        with pytest.raises(ValueError, match='force_std_scale must be a finite number > 0'):
            select_structures(parameters=orm.Dict({'force_std_scale': bad}), md=trajectory)
