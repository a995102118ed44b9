"""Tests for the active-learning selection logic (descriptors, trust window, FPS, dedup, initial frames)."""

import numpy as np
import pytest
from ase.build import bulk, molecule

from aiida_les.selection import (
    farthest_point_sampling,
    perturbed_copies,
    select_candidates,
    structure_descriptor,
)

SPECIES = ['Cl', 'Na']


def test_descriptor_invariances():
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(0.1, seed=1)
    reference = structure_descriptor(atoms, SPECIES)
    moved = atoms.copy()
    moved.rotate(37, 'z', rotate_cell=True)
    moved.translate([0.3, -1.2, 2.0])
    np.testing.assert_allclose(structure_descriptor(moved, SPECIES), reference, atol=1e-10)
    permuted = atoms[np.random.default_rng(0).permutation(len(atoms))]
    np.testing.assert_allclose(structure_descriptor(permuted, SPECIES), reference, atol=1e-10)
    supercell = atoms.repeat((2, 1, 1))
    np.testing.assert_allclose(structure_descriptor(supercell, SPECIES), reference, atol=1e-10)
    assert np.linalg.norm(structure_descriptor(bulk('NaCl', 'rocksalt', a=6.0, cubic=True), SPECIES) - reference) > 0.1


def test_descriptor_unknown_species():
    with pytest.raises(ValueError, match=r"\['H', 'O'\] are not in the descriptor species"):
        structure_descriptor(molecule('H2O'), SPECIES)


def test_farthest_point_sampling_spreads_out():
    points = np.array([[0.0], [0.1], [0.2], [5.0], [10.0]])
    assert sorted(farthest_point_sampling(points, 3, start=0)) == [0, 3, 4]
    # Against a reference that already covers 10: pick far from it first.
    assert farthest_point_sampling(points, 1, reference=np.array([[10.0]])) == [0]


def test_trust_window_budget_and_counts():
    force_std = np.array([0.01, 0.02, 0.2, 0.3, 0.25, 5.0, 0.4])
    descriptors = np.arange(7, dtype=float)[:, None]
    result = select_candidates(force_std, descriptors, lower=0.1, upper=1.0, budget=2)
    assert result.counts == {'accurate': 2, 'candidate': 4, 'failed': 1, 'fallback': 0, 'duplicate': 0, 'selected': 2}
    assert set(result.selected) <= {2, 3, 4, 6}
    assert len(result.selected) == 2
    assert result.accurate_fraction == pytest.approx(2 / 7)


def test_charge_disagreement_is_a_second_signal():
    force_std = np.array([0.01, 0.01, 0.01])
    charge_std = np.array([0.0, 0.3, 0.0])
    result = select_candidates(
        force_std, np.eye(3), lower=0.1, upper=1.0, budget=5, charge_std=charge_std, charge_threshold=0.1
    )
    assert result.selected == [1]


def test_duplicates_of_dataset_and_of_each_other_dropped():
    descriptors = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 3.0]])
    force_std = np.full(4, 0.5)
    result = select_candidates(
        force_std, descriptors, lower=0.1, upper=1.0, budget=10, dataset_descriptors=np.array([[3.0, 3.0]])
    )
    assert sorted(result.selected) == [0, 2]
    assert result.counts['duplicate'] == 2


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [({'lower': 0.5, 'upper': 0.1}, 'lower < upper'), ({'budget': -1}, 'budget must be >= 0')],
)
def test_bad_selection_input(kwargs, message):
    arguments = {'lower': 0.1, 'upper': 1.0, 'budget': 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        select_candidates(np.array([0.2]), np.zeros((1, 1)), **arguments)


def test_perturbed_copies():
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.info['total_charge'] = 0
    copies = perturbed_copies(atoms, 4, rattle=0.05, max_strain=0.02, seed=3)
    assert len(copies) == 4
    volumes = {round(copy.get_volume(), 6) for copy in copies}
    assert len(volumes) == 4
    assert all(abs(copy.get_volume() / atoms.get_volume() - 1) < 0.07 for copy in copies)
    assert all(copy.info['total_charge'] == 0 for copy in copies)
    again = perturbed_copies(atoms, 4, rattle=0.05, max_strain=0.02, seed=3)
    np.testing.assert_allclose(again[2].positions, copies[2].positions)


def test_fallback_takes_the_uncertain_half_when_nothing_is_a_candidate():
    force_std = np.array([0.001, 0.004, 0.002, 0.003, 9.0])
    descriptors = np.arange(5, dtype=float)[:, None]
    strict = select_candidates(force_std, descriptors, lower=0.05, upper=1.0, budget=3)
    assert strict.selected == []
    loose = select_candidates(force_std, descriptors, lower=0.05, upper=1.0, budget=3, fallback=True)
    assert sorted(loose.selected) == [1, 3]  # at or above the median of the non-failed frames; never the failed one
    assert loose.counts['fallback'] == 2
    assert loose.counts['accurate'] == 4  # the accurate fraction still reports what the committee believes
