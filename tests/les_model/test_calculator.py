"""Committee uncertainty measures and the ASE calculator."""

from __future__ import annotations

import ase
import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.calculator import LesCalculator
from les_model.config import ModelConfig
from les_model.io import save_model
from les_model.nn.model import LesModel
from les_model.testing.models import TINY_MODEL
from les_model.testing.structures import random_ionic_system
from les_model.uncertainty import committee_statistics


def test_committee_statistics_against_hand_computed_values():
    batch = torch.tensor([0, 0, 1])
    n_atoms = torch.tensor([2, 1])
    f1 = torch.zeros(3, 3)
    f2 = torch.zeros(3, 3)
    f2[1] = torch.tensor([3.0, 4.0, 0.0])  # atom 1 differs by |d| = 5 between the two members
    preds = [
        {K.ENERGY: torch.tensor([1.0, 2.0]), K.FORCES: f1, K.CHARGES: torch.tensor([0.5, -0.5, 0.0])},
        {K.ENERGY: torch.tensor([3.0, 2.0]), K.FORCES: f2, K.CHARGES: torch.tensor([0.7, -0.7, 0.0])},
    ]
    stats = committee_statistics(preds, batch, n_atoms)
    # sigma_F,i = sqrt(mean_k |F_i^k - <F_i>|^2) = 2.5 for atom 1
    np.testing.assert_allclose(stats['force_std'].numpy(), [0.0, 2.5, 0.0])
    np.testing.assert_allclose(stats['max_force_std'].numpy(), [2.5, 0.0])
    np.testing.assert_allclose(stats['mean_force_std'].numpy(), [1.25, 0.0])
    np.testing.assert_allclose(stats['energy_std_per_atom'].numpy(), [0.5, 0.0])  # std(1, 3) = 1 over 2 atoms
    np.testing.assert_allclose(stats['max_charge_std'].numpy(), [0.1, 0.0], atol=1e-7)
    np.testing.assert_allclose(stats[K.ENERGY].numpy(), [2.0, 2.0])


def test_single_model_has_zero_uncertainty():
    stats = committee_statistics(
        [{K.ENERGY: torch.ones(1), K.FORCES: torch.randn(4, 3)}], torch.zeros(4, dtype=torch.long), torch.tensor([4])
    )
    assert float(stats['max_force_std'][0]) == 0.0
    assert float(stats['energy_std_per_atom'][0]) == 0.0
    with pytest.raises(ValueError, match='at least one prediction'):
        committee_statistics([], torch.zeros(1, dtype=torch.long), torch.tensor([1]))


def _models(tmp_path, k=2):
    paths = []
    for seed in range(k):
        torch.manual_seed(seed)
        model = LesModel(ModelConfig(**TINY_MODEL), species=[1, 8], reference_energies={1: -1.0, 8: -5.0}).double()
        paths.append(save_model(model, tmp_path / f'model_{seed}.pt'))
    return paths


def _atoms():
    atoms = random_ionic_system(9, density=0.05, min_distance=1.2, seed=3)
    atoms.numbers = [8, 1, 1] * 3
    atoms.set_initial_charges(None)
    return atoms


def test_calculator_results_match_the_model_and_ase_conventions(tmp_path):
    paths = _models(tmp_path, k=1)
    atoms = _atoms()
    atoms.calc = LesCalculator(paths, device='cpu')
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert stress.shape == (6,)
    # ase sign convention: stress = (1/V) dE/d(strain); finite difference of a uniform scaling gives the trace
    h = 1e-5
    volume = atoms.get_volume()
    energies = []
    for s in (1 + h, 1 - h):
        scaled = atoms.copy()
        scaled.calc = atoms.calc
        scaled.set_cell(atoms.cell * s, scale_atoms=True)
        energies.append(scaled.get_potential_energy())
    trace_fd = (energies[0] - energies[1]) / (2 * h) / volume
    np.testing.assert_allclose(stress[:3].sum(), trace_fd, rtol=1e-5, atol=1e-9)
    assert forces.shape == (9, 3)
    assert atoms.calc.results['charges'].sum() == pytest.approx(0.0, abs=1e-10)
    assert atoms.calc.results['max_force_std'] == 0.0
    assert np.isfinite(energy)


def test_calculator_committee_and_total_charge(tmp_path):
    paths = _models(tmp_path, k=3)
    atoms = _atoms()
    atoms.info['total_charge'] = 1.0
    calc = LesCalculator(paths, device='cpu', compute_bec=True)
    atoms.calc = calc
    atoms.get_potential_energy()
    results = calc.results
    assert calc.committee_size == 3
    assert results['energy'] == pytest.approx(results['committee_energies'].mean())
    assert results['max_force_std'] > 0
    assert results['max_charge_std'] > 0
    assert results['charges'].sum() == pytest.approx(1.0, abs=1e-10)
    assert results['bec'].shape == (9, 3, 3)
    assert results['force_std'].shape == (9,)
    override = LesCalculator(paths, device='cpu', total_charge=0.0)
    atoms.calc = override
    atoms.get_potential_energy()
    assert override.results['charges'].sum() == pytest.approx(0.0, abs=1e-10)


def test_calculator_molecule_has_no_stress(tmp_path):
    paths = _models(tmp_path, k=1)
    molecule = ase.Atoms('OH2', positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    molecule.calc = LesCalculator(paths[0], device='cpu')
    molecule.get_forces()
    assert 'stress' not in molecule.calc.results
    assert molecule.calc.results['dipole'].shape == (3,)
