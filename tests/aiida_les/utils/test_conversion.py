"""Tests for :mod:`aiida_les.utils.conversion`: ase <-> StructureData / TrajectoryData / LesDatasetData."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk, molecule

from aiida_les.utils.conversion import (
    ase_to_structure,
    ase_to_trajectory,
    dataset_to_structures,
    structure_to_ase,
    structures_to_dataset,
    trajectory_to_ase,
)


def _frames(n: int = 3, variable_cell: bool = False):
    frames = []
    for index in range(n):
        atoms = bulk('NaCl', 'rocksalt', a=5.64 + (0.01 * index if variable_cell else 0.0), cubic=True)
        atoms.rattle(0.02, seed=index)
        atoms.info['max_force_std'] = 0.1 * index
        atoms.info['dipole'] = np.array([index, 0.0, -index], dtype=float)
        atoms.arrays['force_std'] = np.full(len(atoms), 0.01 * index)
        atoms.arrays['forces'] = np.full((len(atoms), 3), float(index))
        frames.append(atoms)
    return frames


def test_structure_round_trip():
    atoms = molecule('H2O')
    atoms.center(vacuum=3.0)
    atoms.pbc = [True, True, False]
    back = structure_to_ase(ase_to_structure(atoms))
    assert back.get_chemical_symbols() == ['O', 'H', 'H']
    np.testing.assert_allclose(back.positions, atoms.positions)
    np.testing.assert_allclose(np.asarray(back.cell), np.asarray(atoms.cell))
    assert back.pbc.tolist() == [True, True, False]


def test_type_errors():
    with pytest.raises(TypeError, match='expected an ase.Atoms, got str'):
        ase_to_structure('NaCl')
    with pytest.raises(TypeError, match='expected a TrajectoryData, got Dict'):
        trajectory_to_ase(orm.Dict())


def test_trajectory_round_trip_with_arrays():
    """Per-frame scalars and vectors go to ``info``, per-atom arrays to ``arrays``; variable cells survive."""
    frames = _frames(variable_cell=True)
    trajectory = ase_to_trajectory(
        frames,
        info_keys=['max_force_std', 'dipole', 'absent'],
        atom_keys=['force_std', 'forces'],
        stepids=[0, 10, 20],
        times=[0.0, 5.0, 10.0],
    )
    assert trajectory.numsteps == 3
    assert list(trajectory.get_stepids()) == [0, 10, 20]
    assert trajectory.get_array('max_force_std').shape == (3,)
    assert trajectory.get_array('dipole').shape == (3, 3)
    assert trajectory.get_array('forces').shape == (3, 8, 3)
    assert 'absent' not in trajectory.get_arraynames()
    back = trajectory_to_ase(trajectory.store())
    for original, restored in zip(frames, back, strict=True):
        np.testing.assert_allclose(restored.positions, original.positions)
        np.testing.assert_allclose(np.asarray(restored.cell), np.asarray(original.cell))
        assert restored.info['max_force_std'] == pytest.approx(original.info['max_force_std'])
        np.testing.assert_allclose(restored.info['dipole'], original.info['dipole'])
        np.testing.assert_allclose(restored.arrays['force_std'], original.arrays['force_std'])
        np.testing.assert_allclose(restored.arrays['forces'], original.arrays['forces'])


def test_trajectory_missing_info_is_nan():
    frames = _frames()
    del frames[1].info['max_force_std']
    values = ase_to_trajectory(frames, info_keys=['max_force_std']).get_array('max_force_std')
    assert np.isnan(values[1])
    assert values[2] == pytest.approx(0.2)


def test_trajectory_refuses_changing_composition_and_bad_arrays():
    frames = _frames(2)
    with pytest.raises(ValueError, match='needs at least one frame'):
        ase_to_trajectory([])
    with pytest.raises(ValueError, match='first axis of length 2'):
        ase_to_trajectory(frames, arrays={'bad': np.zeros(3)})
    frames[1] = frames[1][:-1]
    with pytest.raises(ValueError, match='Frame 1 has symbols'):
        ase_to_trajectory(frames)


def test_dataset_round_trip():
    structures = [ase_to_structure(atoms) for atoms in _frames(2)]
    dataset = structures_to_dataset(structures)
    assert dataset.n_structures == 2
    back = dataset_to_structures(dataset)
    assert [s.get_formula() for s in back] == ['Cl4Na4', 'Cl4Na4']
    np.testing.assert_allclose(back[1].get_ase().positions, structures[1].get_ase().positions, atol=1e-8)


@pytest.mark.parametrize('periodic', [True, False], ids=['crystal', 'molecule'])
def test_trajectory_gives_pbc_to_aiida_without_deprecation_warning(periodic):
    """A campaign converts every MD run's frames: AiiDA must get the periodicity, not assume it and warn."""
    import warnings

    from aiida.common.warnings import AiidaDeprecationWarning

    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True) if periodic else molecule('H2O')
    if not periodic:
        atoms.center(vacuum=4.0)
        atoms.pbc = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        trajectory = ase_to_trajectory([atoms, atoms.copy()])
        trajectory.store()
    assert not [w for w in caught if issubclass(w.category, AiidaDeprecationWarning)]
    assert list(trajectory.pbc) == [periodic] * 3
    assert trajectory_to_ase(trajectory)[1].pbc.tolist() == [periodic] * 3
