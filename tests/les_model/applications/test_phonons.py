"""Phonons with the non-analytic correction: rigid-ion NaCl against the analytic LO-TO splitting, BEC from a model."""

from __future__ import annotations

import math

import numpy as np
import phonopy
import pytest
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes

from les_model.applications.phonons.born import (
    born_charges_from_calculator,
    nac_parameters,
    unitcell_born_from_primitive,
)
from les_model.applications.phonons.compute import create_phonopy
from les_model.applications.phonons.run import run_phonons
from les_model.calculator import LesCalculator
from les_model.config import ModelConfig
from les_model.electrostatics.ewald import ewald_energy
from les_model.electrostatics.polarization import acoustic_sum_rule_violation as asr_violation
from les_model.nn.model import LesModel
from les_model.nn.response import born_effective_charges, dipole_moment
from les_model.testing.models import TINY_MODEL
from les_model.testing.structures import conventional_cell, rocksalt
from les_model.units import COULOMB_CONSTANT

#: sqrt(eV / (Å^2 amu)) / (2 pi) in THz, from SI constants (independent of phonopy's conversion factor)
THZ = math.sqrt(units._e / (1e-20 * units._amu)) / (2.0 * math.pi) / 1e12
R0 = 2.82  # nearest-neighbour distance in Å
BM_A, BM_RHO, BM_CUT = 1900.0, 0.3, 4.0  # Born-Mayer repulsion A exp(-r / rho) between Na-Cl pairs, cutoff in Å


class RigidIonCalculator(Calculator):
    """Fixed point charges (exact Ewald) + Born-Mayer repulsion between unlike ions; dipole and BEC by autograd."""

    implemented_properties = ['energy', 'forces', 'dipole', 'bec']

    def __init__(self, charge: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.charge = charge

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = torch.tensor(self.atoms.positions, dtype=torch.float64, requires_grad=True)
        cell = torch.tensor(self.atoms.cell.array, dtype=torch.float64)
        sign = torch.tensor([1.0 if z == 11 else -1.0 for z in self.atoms.numbers], dtype=torch.float64)
        q = self.charge * sign
        # Born-Mayer over unlike pairs within BM_CUT (minimum-image-free: explicit lattice translations)
        frac_shifts = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
        shifts = frac_shifts.to(torch.float64) @ cell
        diff = pos[None, :, None, :] - pos[:, None, None, :] + shifts[None, None]
        r = torch.linalg.norm(diff, dim=-1)
        unlike = (sign[:, None] * sign[None, :] < 0)[:, :, None] & (r < BM_CUT)
        repulsion = 0.5 * (BM_A * torch.exp(-r[unlike] / BM_RHO)).sum()
        energy = ewald_energy(pos, q, cell, accuracy=1e-10) + repulsion
        (grad,) = torch.autograd.grad(energy, pos)
        batch = torch.zeros(len(self.atoms), dtype=torch.int64)
        dipole = dipole_moment(pos, q, batch, 1)
        self.results = {
            'energy': float(energy.detach()),
            'forces': -grad.numpy(),
            'dipole': dipole.detach().numpy()[0],
            'bec': born_effective_charges(dipole, pos).detach().numpy(),
        }


def analytic_gamma(charge: float, eps_inf: float, atoms) -> tuple[float, float]:
    """TO and LO frequencies (THz) of rigid-ion rock salt with nearest-neighbour Born-Mayer repulsion.

    mu w_TO^2 = k_sr - (4 pi / 3) k_e Z^2 / V (Lorentz field), w_LO^2 - w_TO^2 = 4 pi k_e Z^2 / (eps_inf V mu),
    k_sr = 2 phi'' + 4 phi' / r0 for the six neighbours of phi(r) = A exp(-r / rho).
    """
    phi = BM_A * math.exp(-R0 / BM_RHO)
    k_sr = 2.0 * phi / BM_RHO**2 - 4.0 * phi / (BM_RHO * R0)
    volume = atoms.get_volume()
    m1, m2 = atoms.get_masses()
    mu = m1 * m2 / (m1 + m2)
    w2_to = (k_sr - 4.0 * math.pi / 3.0 * COULOMB_CONSTANT * charge**2 / volume) / mu
    w2_lo = w2_to + 4.0 * math.pi * COULOMB_CONSTANT * charge**2 / (eps_inf * volume * mu)
    return THZ * math.sqrt(w2_to), THZ * math.sqrt(w2_lo)


def test_rigid_ion_calculator_born_charges_are_the_ionic_charges():
    atoms = rocksalt(R0)
    born = born_charges_from_calculator(atoms, RigidIonCalculator(charge=1.2), enforce_asr=False)
    expected = np.array([1.2, -1.2])[:, None, None] * np.eye(3)
    np.testing.assert_allclose(born, expected, atol=1e-12)
    assert asr_violation(born) < 1e-12


@pytest.mark.parametrize(('charge', 'eps_inf'), [(1.0, 1.0), (0.8, 2.4)])
def test_rigid_ion_lo_to_splitting_matches_analytic(charge, eps_inf, tmp_path):
    atoms = rocksalt(R0)
    calc = RigidIonCalculator(charge=charge)
    result = run_phonons(
        atoms,
        calc,
        supercell_matrix=2,
        primitive_matrix=None,
        displacement=0.002,
        eps_inf=eps_inf,
        born_from_calculator=True,
        band_npoints=11,
        dos_mesh=6,
        output_dir=tmp_path,
    )
    # Z* from the model = the ionic charges
    np.testing.assert_allclose(result.nac['born'][:, 0, 0], [charge, -charge], atol=1e-10)
    to, lo = analytic_gamma(charge, eps_inf, atoms)
    np.testing.assert_allclose(result.gamma[:3], 0.0, atol=1e-3)
    np.testing.assert_allclose(result.gamma[3:5], to, rtol=2e-4)
    np.testing.assert_allclose(result.gamma[5], lo, rtol=2e-4)
    np.testing.assert_allclose(result.gamma_analytic[3:], to, rtol=2e-4)  # no NAC: triply degenerate TO
    split = (result.gamma[5] ** 2 - result.gamma[3] ** 2) / THZ**2
    mu = np.prod(atoms.get_masses()) / atoms.get_masses().sum()
    expected = 4.0 * math.pi * COULOMB_CONSTANT * charge**2 / (eps_inf * atoms.get_volume() * mu)
    np.testing.assert_allclose(split, expected, rtol=1e-4)
    # files: the saved phonopy parameters reproduce the LO-TO split Gamma frequencies
    for kind in ('params', 'force_sets', 'born', 'band', 'dos', 'band_png', 'dos_png'):
        assert result.files[kind].is_file(), kind
    reloaded = phonopy.load(result.files['params'], log_level=0)
    reloaded.run_qpoints([[0.0, 0.0, 0.0]], nac_q_direction=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.sort(reloaded.qpoints.frequencies[0]), result.gamma, atol=1e-6)


def test_conventional_cell_born_charges_map_to_the_primitive_cell():
    atoms = conventional_cell(rocksalt(R0))
    phonon = create_phonopy(atoms, supercell_matrix=1, primitive_matrix='auto')
    assert len(phonon.primitive) == 2
    born = np.array([1.1 if z == 11 else -1.1 for z in atoms.numbers])[:, None, None] * np.eye(3)
    nac = nac_parameters(phonon, born, 2.0)
    prim_sign = [1.0 if s == 'Na' else -1.0 for s in phonon.primitive.symbols]
    np.testing.assert_allclose(nac['born'][:, 0, 0], 1.1 * np.array(prim_sign), atol=1e-12)
    np.testing.assert_allclose(unitcell_born_from_primitive(phonon, nac['born']), born, atol=1e-12)
    with pytest.raises(ValueError, match=r'born must have shape \(8, 3, 3\)'):
        nac_parameters(phonon, born[:2], 2.0)
    with pytest.raises(ValueError, match='eps_inf must be'):
        nac_parameters(phonon, born, -1.0)


def test_model_born_charges_obey_acoustic_sum_rule_after_enforcement(tmp_path):
    torch.manual_seed(0)
    model = LesModel(ModelConfig(**TINY_MODEL), species=[11, 17])
    with torch.no_grad():  # make the latent charges clearly non-zero and position dependent
        for p in model.charge_head.parameters():
            p.mul_(5.0)
    calc = LesCalculator(model, device='cpu', dtype='float64', compute_bec=True)
    atoms = conventional_cell(rocksalt(R0))
    atoms.rattle(0.05, seed=1)
    raw = born_charges_from_calculator(atoms, calc, enforce_asr=False)
    assert np.abs(raw).max() > 1e-2  # the model predicts non-trivial Born charges
    fixed = born_charges_from_calculator(atoms, calc, enforce_asr=True)
    assert asr_violation(fixed) < 1e-3
    np.testing.assert_allclose(fixed - raw, np.broadcast_to(fixed[0] - raw[0], raw.shape), atol=1e-12)
    scaled = born_charges_from_calculator(atoms, calc, eps_inf=4.0, scale_by_eps_inf=True)
    np.testing.assert_allclose(scaled, fixed / 2.0, atol=1e-12)
    with pytest.raises(ValueError, match='eps_inf > 0'):
        born_charges_from_calculator(atoms, calc, scale_by_eps_inf=True)


def test_run_phonons_with_model_calculator_and_force_sets_agree(tmp_path):
    torch.manual_seed(1)
    model = LesModel(ModelConfig(**TINY_MODEL), species=[11, 17])
    calc = LesCalculator(model, device='cpu', dtype='float64')
    atoms = rocksalt(R0)
    first = run_phonons(atoms, calc, primitive_matrix=None, band_npoints=0, dos_mesh=None)
    forces = first.phonon.forces
    second = run_phonons(atoms, force_sets=forces, primitive_matrix=None, band_npoints=0, dos_mesh=None)
    np.testing.assert_allclose(second.gamma, first.gamma, atol=1e-8)
    assert int((np.abs(first.gamma) < 1e-3).sum()) >= 3  # acoustic modes at Gamma (the random model may be unstable)
    with pytest.raises(ValueError, match='force_sets must have shape'):
        run_phonons(atoms, force_sets=forces[:1], primitive_matrix=None, band_npoints=0, dos_mesh=None)
    with pytest.raises(ValueError, match='needs eps_inf'):
        run_phonons(atoms, force_sets=forces, born=np.zeros((2, 3, 3)), primitive_matrix=None, band_npoints=0)


def test_model_trained_on_rigid_ions_recovers_born_charges_and_lo_to_splitting():
    """An LES model trained (energies and forces only) on random +-1 point-charge structures has |Z*| = 1 in rock salt
    and, with eps_inf = 1, the analytic LO-TO splitting 4 pi k_e Z^2 / (V mu) of the true charges.
    """
    from les_model.config import TrainConfig
    from les_model.data.dataset import StructureDataset
    from les_model.data.synthetic import label_point_charges, random_ionic_structures
    from les_model.train.trainer import Trainer, initialise_model

    frames = label_point_charges(random_ionic_structures(12, 16, seed=1), {11: 1.0, 17: -1.0})
    train_set, valid_set = StructureDataset.from_atoms(frames).split(0.25, seed=0)
    config = TrainConfig.from_dict(
        {
            'train_file': 'generated',
            'epochs': 20,
            'batch_size': 2,
            'lr': 0.01,
            'ema_decay': 0.9,
            'scheduler': 'none',
            'forces_weight': 10.0,
            'model': {'n_features': 16, 'readout_hidden': 16, 'charge_hidden': 8, 'n_interactions': 1, 'cutoff': 4.0},
        }
    )
    model = initialise_model(config, train_set, 0)
    trainer = Trainer(config, model, train_set, valid_set, torch.device('cpu'), torch.float64, 0)
    trainer.fit()
    calc = LesCalculator(trainer.model, device='cpu', dtype='float64')

    atoms = rocksalt(R0)
    result = run_phonons(
        atoms, calc, supercell_matrix=2, eps_inf=1.0, born_from_calculator=True, band_npoints=0, dos_mesh=None
    )
    z_na = result.nac['born'][[s == 'Na' for s in result.phonon.primitive.symbols]][0]
    # Energies and forces fix the latent charges only up to a global sign (E_lr is even in q); the NAC term below
    # depends on Z* Z* and is sign-free. Dipole or BEC labels fix the sign.
    np.testing.assert_allclose(np.sign(z_na[0, 0]) * z_na, np.eye(3), atol=0.05)  # |Z*| = 1 (isotropic) within 5 %

    # The NAC adds a rank-one term to the dynamical matrix: its trace grows by exactly w_LO^2 - w_TO^2. (The TO mode of
    # this crude model may be unstable, so modes are not identified by sorting.)
    def trace(frequencies):
        return float(np.sum(np.sign(frequencies) * frequencies**2)) / THZ**2

    split = trace(result.gamma) - trace(result.gamma_analytic)
    mu = np.prod(atoms.get_masses()) / atoms.get_masses().sum()
    analytic = 4.0 * math.pi * COULOMB_CONSTANT / (atoms.get_volume() * mu)
    np.testing.assert_allclose(split, analytic, rtol=0.1)
    np.testing.assert_allclose(split, analytic * z_na[0, 0] ** 2, rtol=1e-3)  # phonopy's NAC uses the model's Z*
