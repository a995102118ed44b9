"""Dipoles, polarization and Born effective charges."""

import pytest
import torch

from les_model.electrostatics.polarization import born_charge_sums, enforce_acoustic_sum_rule
from les_model.nn.charge_constraints import enforce_total_charge
from les_model.nn.qeq import QEq
from les_model.nn.response import (
    born_effective_charges,
    dipole_moment,
    local_born_effective_charges,
    polarization,
)
from les_model.testing.structures import batch_from_atoms, random_ionic_system

EYE = torch.eye(3, dtype=torch.float64)


def test_rigid_ion_bec_equals_charges_for_dipole_and_polarization():
    structures = [random_ionic_system(6, density=0.05, seed=60), random_ionic_system(9, density=0.05, seed=61)]
    data = batch_from_atoms(structures)
    positions = data['positions'].clone().requires_grad_(True)
    charges = data['charges']
    expected = charges[:, None, None] * EYE
    mu = dipole_moment(positions, charges, data['batch'], 2)
    torch.testing.assert_close(born_effective_charges(mu, positions), expected)
    # polarization: atoms anywhere in (or outside) the cell, still Z* = q
    pol = polarization(positions + 7.3, charges, data['cell'], data['batch'], 2)
    torch.testing.assert_close(born_effective_charges(pol, positions), expected)
    torch.testing.assert_close(born_effective_charges(pol, positions, eps_inf=4.0), expected / 2.0)


def test_polarization_is_dipole_modulo_lattice_vectors():
    atoms = random_ionic_system(8, density=0.05, seed=62)
    data = batch_from_atoms([atoms])
    cell = data['cell'][0]
    mu = dipole_moment(data['positions'], data['charges'], data['batch'], 1)[0]
    pol = polarization(data['positions'], data['charges'], data['cell'], data['batch'], 1)[0]
    lattice_coefficients = torch.linalg.solve(cell.T, mu - pol)
    torch.testing.assert_close(lattice_coefficients, torch.round(lattice_coefficients), atol=1e-9, rtol=0)
    frac = torch.linalg.solve(cell.T, pol)
    assert bool((frac.abs() <= 0.5 + 1e-12).all())
    # wrapping an atom by a lattice vector changes the polarization by q * lattice vector, modulo lattice vectors
    wrapped = data['positions'].clone()
    wrapped[0] += cell[1]
    pol_wrapped = polarization(wrapped, data['charges'], data['cell'], data['batch'], 1)[0]
    diff = torch.linalg.solve(cell.T, pol_wrapped - pol - data['charges'][0] * cell[1])
    torch.testing.assert_close(diff, torch.round(diff), atol=1e-9, rtol=0)


def test_qeq_molecule_bec_obeys_acoustic_sum_rule_and_enforcement():
    molecule = random_ionic_system(6, density=0.05, seed=63)
    molecule.pbc = False
    data = batch_from_atoms([molecule])
    gen = torch.Generator().manual_seed(3)
    chi = torch.randn(6, generator=gen, dtype=torch.float64)
    hardness = 10.0 + torch.rand(6, generator=gen, dtype=torch.float64)
    positions = data['positions'].clone().requires_grad_(True)
    charges = QEq()(chi, hardness, positions, data['cell'], data['pbc'], data['batch'], 1)
    z = born_effective_charges(dipole_moment(positions, charges, data['batch'], 1), positions)
    # charges respond to positions, so Z* differs from q I, but a neutral isolated molecule obeys the sum rule
    assert float((z - charges.detach()[:, None, None] * EYE).abs().max()) > 1e-3
    assert float(born_charge_sums(z, data['batch'], 1).abs().max()) < 1e-10

    noisy = z + 0.05 * torch.randn(z.shape, generator=gen, dtype=torch.float64)
    assert float(born_charge_sums(noisy, data['batch'], 1).abs().max()) > 1e-3
    fixed = enforce_acoustic_sum_rule(noisy, data['batch'], 1)
    assert float(born_charge_sums(fixed, data['batch'], 1).abs().max()) < 1e-12
    torch.testing.assert_close(fixed - noisy, (fixed - noisy)[:1].expand_as(fixed))


def test_bec_needs_graph():
    data = batch_from_atoms([random_ionic_system(3, seed=64)])
    mu = dipole_moment(data['positions'], data['charges'], data['batch'], 1)
    with pytest.raises(ValueError, match='requires_grad'):
        born_effective_charges(mu, data['positions'])


def test_local_bec_rigid_ions_and_wrapping_invariance():
    data = batch_from_atoms([random_ionic_system(6, density=0.05, seed=65), random_ionic_system(4, seed=66)])
    positions = data['positions'].clone().requires_grad_(True)
    z = local_born_effective_charges(positions, data['charges'], data['cell'], data['batch'], 2)
    torch.testing.assert_close(z, data['charges'][:, None, None] * EYE)

    # position-dependent charges: wrapping an atom by a lattice vector must not change Z*
    def model_charges(pos):
        q = data['charges'] * (1.0 + 0.1 * torch.sin(pos).sum(dim=1))
        return enforce_total_charge(q, data['batch'], n_structures=2)

    z0 = local_born_effective_charges(positions, model_charges(positions), data['cell'], data['batch'], 2)
    assert float((z0 - z).abs().max()) > 1e-3
    shift = torch.zeros_like(data['positions'])
    shift[2] = data['cell'][0, 1]
    wrapped = (data['positions'] + shift).requires_grad_(True)
    # sin(pos) is not lattice periodic, so feed the charges of the unwrapped positions through the wrapped ones
    z1 = local_born_effective_charges(wrapped, model_charges(wrapped - shift), data['cell'], data['batch'], 2)
    torch.testing.assert_close(z1, z0)


def test_local_bec_tends_to_dipole_bec_for_molecule_in_large_box():
    molecule = random_ionic_system(5, density=0.05, seed=67)
    data = batch_from_atoms([molecule])
    positions = (data['positions'] - data['positions'].mean(0)).clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(4)
    chi = torch.randn(5, generator=gen, dtype=torch.float64)
    hardness = 10.0 + torch.rand(5, generator=gen, dtype=torch.float64)
    pbc = torch.zeros(1, 3, dtype=torch.bool)
    charges = QEq()(chi, hardness, positions, data['cell'], pbc, data['batch'], 1)
    reference = born_effective_charges(dipole_moment(positions, charges, data['batch'], 1), positions)
    big_cell = torch.eye(3, dtype=torch.float64).unsqueeze(0) * 400.0
    local = local_born_effective_charges(positions, charges, big_cell, data['batch'], 1)
    torch.testing.assert_close(local, reference, atol=1e-4, rtol=0)
