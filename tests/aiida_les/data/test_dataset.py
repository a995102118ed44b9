"""Tests for :class:`aiida_les.data.dataset.LesDatasetData`."""

import io

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_les.data.dataset import LesDatasetData


def _labelled_frames(n=3, level='cp2k/fast'):
    frames = []
    rng = np.random.default_rng(0)
    for _ in range(n):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1000)))
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(rng.normal()), forces=rng.normal(size=(len(atoms), 3)), stress=np.zeros(6)
        )
        atoms.info['level_of_theory'] = level
        frames.append(atoms)
    return frames


def test_from_ase_statistics_and_round_trip():
    frames = _labelled_frames()
    node = LesDatasetData.from_ase(frames).store()
    assert node.n_structures == 3
    assert node.species == ['Cl', 'Na']
    assert node.base.attributes.get('n_atoms') == 24
    assert {'energy', 'forces', 'stress'} <= set(node.labels)
    assert node.level_of_theory == 'cp2k/fast'
    back = node.get_ase()
    np.testing.assert_allclose(back[1].positions, frames[1].positions, atol=1e-7)  # extxyz keeps 8 decimals
    np.testing.assert_allclose(back[2].get_forces(), frames[2].get_forces(), atol=1e-7)
    assert len(node.get_structures()) == 3


def test_response_labels_listed():
    """Dipole (which ase's extxyz reader moves into the calculator) and per-atom Born charges count as labels."""
    frames = _labelled_frames(2)
    for atoms in frames:
        atoms.info['dipole'] = np.array([0.1, -0.2, 0.3])
        atoms.arrays['bec'] = np.tile(np.eye(3).reshape(9), (len(atoms), 1))
    node = LesDatasetData.from_ase(frames)
    assert {'dipole', 'bec'} <= set(node.labels)
    back = node.get_ase()[0]
    np.testing.assert_allclose(back.get_dipole_moment(), [0.1, -0.2, 0.3])
    assert back.arrays['bec'].shape == (8, 9)


def test_mixed_levels_of_theory_refused():
    frames = _labelled_frames(2, 'cp2k/fast') + _labelled_frames(1, 'cp2k/balanced')
    with pytest.raises(ValueError, match='must not mix levels of theory'):
        LesDatasetData.from_ase(frames)


@pytest.mark.parametrize(
    ('content', 'message'),
    [(b'', 'holds no structures|Not a readable'), (b'2\nnot extxyz\nNa 0 0\n', 'Not a readable')],
)
def test_malformed_extxyz_refused(content, message):
    with pytest.raises(ValueError, match=message):
        LesDatasetData(io.BytesIO(content))


def test_empty_list_refused():
    with pytest.raises(ValueError, match='at least one structure'):
        LesDatasetData.from_ase([])
