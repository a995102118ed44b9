"""ase.Atoms <-> batched tensors, extxyz datasets, reference energies, splits, bootstrap."""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from les_model import _keys as K
from les_model.config import DataKeysConfig
from les_model.data.atoms import atoms_to_batch, atoms_to_sample
from les_model.data.dataset import StructureDataset, fit_reference_energies


def _labelled(n_atoms, energy, seed, periodic=True, **info):
    rng = np.random.default_rng(seed)
    atoms = ase.Atoms(
        numbers=rng.choice([1, 8], size=n_atoms),
        positions=rng.uniform(0, 5, (n_atoms, 3)),
        cell=np.eye(3) * 5 if periodic else None,
        pbc=periodic,
    )
    results = {'energy': energy, 'forces': rng.normal(size=(n_atoms, 3))}
    if periodic:
        results['stress'] = rng.normal(size=6)
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(info)
    return atoms


def test_batch_layout_and_masks():
    a = _labelled(3, -1.0, 0, total_charge=1.0, spin=2.0)
    b = _labelled(2, -2.0, 1, periodic=False)
    b.info['dipole'] = np.array([0.1, 0.2, 0.3])
    batch = atoms_to_batch([a, b], dtype=torch.float32)
    assert batch[K.POSITIONS].shape == (5, 3)
    assert batch[K.POSITIONS].dtype == torch.float32
    assert batch[K.BATCH].tolist() == [0, 0, 0, 1, 1]
    assert batch[K.N_ATOMS].tolist() == [3, 2]
    assert batch[K.TOTAL_CHARGE].tolist() == [1.0, 0.0]
    assert batch[K.SPIN].tolist() == [2.0, 0.0]
    assert batch[K.PBC].tolist() == [[True] * 3, [False] * 3]
    assert batch[K.ENERGY_MASK].tolist() == [True, True]
    assert batch[K.STRESS_MASK].tolist() == [True, False]
    assert batch[K.DIPOLE_MASK].tolist() == [False, True]
    assert K.BEC not in batch
    # Voigt (xx yy zz yz xz xy) -> symmetric 3x3
    voigt = a.calc.results['stress']
    stress = batch[K.STRESS][0].double().numpy()
    np.testing.assert_allclose(stress[1, 2], voigt[3], rtol=1e-6)
    np.testing.assert_allclose(stress[0, 1], voigt[5], rtol=1e-6)
    np.testing.assert_allclose(stress, stress.T)


def test_configurable_key_names_and_bec():
    atoms = _labelled(2, -1.0, 2)
    atoms.calc = None
    atoms.info['E_dft'] = -3.5
    atoms.arrays['F_dft'] = np.ones((2, 3))
    atoms.arrays['Z_born'] = np.tile(np.eye(3).reshape(1, 9), (2, 1))
    atoms.info['charge_state'] = -1
    keys = DataKeysConfig(energy='E_dft', forces='F_dft', bec='Z_born', total_charge='charge_state')
    sample = atoms_to_sample(atoms, keys)
    assert float(sample[K.ENERGY]) == -3.5
    assert sample[K.FORCES].shape == (2, 3)
    assert sample[K.BEC].shape == (2, 3, 3)
    assert float(sample[K.TOTAL_CHARGE]) == -1.0


def test_bad_shapes_are_reported():
    atoms = _labelled(2, -1.0, 3)
    atoms.calc = None
    atoms.arrays['forces'] = np.ones((2, 3))
    atoms.info['dipole'] = np.ones(2)
    with pytest.raises(ValueError, match=r'structure 7: dipole must have shape \(3,\), got \(2,\)'):
        atoms_to_sample(atoms, index=7)


def test_extxyz_round_trip_and_reference_energies(tmp_path):
    e0 = {1: -13.6, 8: -432.1}
    frames = []
    rng = np.random.default_rng(4)
    for i in range(6):
        atoms = _labelled(int(rng.integers(2, 7)), 0.0, i)
        counts = {z: int((atoms.numbers == z).sum()) for z in e0}
        energy = sum(e0[z] * n for z, n in counts.items()) + rng.normal(scale=1e-3)
        atoms.calc.results['energy'] = energy
        frames.append(atoms)
    path = tmp_path / 'data.extxyz'
    ase.io.write(path, frames)
    data = StructureDataset.from_file(path)
    assert len(data) == 6
    assert data.species == (1, 8)
    fitted = fit_reference_energies(data, data.species)
    for z in e0:
        assert fitted[z] == pytest.approx(e0[z], abs=0.01)


def test_split_is_deterministic_and_disjoint():
    data = StructureDataset.from_atoms([_labelled(2, float(i), i) for i in range(10)])
    train, valid = data.split(0.3, seed=5)
    train2, valid2 = data.split(0.3, seed=5)
    energies = lambda d: [float(s[K.ENERGY]) for s in d.samples]  # noqa: E731
    assert energies(valid) == energies(valid2)
    assert len(valid) == 3
    assert len(train) == 7
    assert set(energies(train)).isdisjoint(energies(valid))
    assert energies(data.split(0.3, seed=6)[1]) != energies(valid)


def test_bootstrap_resamples_with_replacement():
    data = StructureDataset.from_atoms([_labelled(2, float(i), i) for i in range(20)])
    boot = data.bootstrap(seed=1)
    values = [float(s[K.ENERGY]) for s in boot.samples]
    assert len(values) == 20
    assert len(set(values)) < 20
    assert values == [float(s[K.ENERGY]) for s in data.bootstrap(seed=1).samples]


def test_batches_shuffle_and_skip():
    data = StructureDataset.from_atoms([_labelled(2, float(i), i) for i in range(7)])
    batches = list(data.batches(3, shuffle_seed=11))
    assert [len(b[K.N_ATOMS]) for b in batches] == [3, 3, 1]
    skipped = list(data.batches(3, shuffle_seed=11, skip=1))
    assert torch.equal(skipped[0][K.ENERGY], batches[1][K.ENERGY])
    assert data.n_batches(3) == 3
