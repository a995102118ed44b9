"""Exact point-charge Coulomb (Ewald, PME, direct, slab) tested against Madelung constants, pymatgen and physics."""

import math

import numpy as np
import pytest
import torch
from ase.build import make_supercell

from les_model.data.neighborlist import edge_vectors, neighbor_list
from les_model.electrostatics.coulomb import CoulombEnergy
from les_model.electrostatics.ewald import EwaldParameters, ewald_energy, ewald_parameters
from les_model.electrostatics.pme import pme_energy, pme_parameters
from les_model.testing.physics import (
    check_forces,
    check_rotation_invariance,
    check_stress,
    check_translation_invariance,
)
from les_model.testing.structures import (
    MADELUNG,
    batch_from_atoms,
    cesium_chloride,
    conventional_cell,
    random_ionic_system,
    rocksalt,
    zincblende,
)
from les_model.units import COULOMB_CONSTANT

BUILDERS = {'rocksalt': rocksalt, 'cesium_chloride': cesium_chloride, 'zincblende': zincblende}
R0 = {'rocksalt': 2.82, 'cesium_chloride': 3.57, 'zincblende': 2.34}


def _energy(atoms, method='ewald', **kwargs):
    data = batch_from_atoms([atoms])
    module = CoulombEnergy(method=method, **kwargs)
    return module(data['positions'], data['charges'], data['cell'], data['pbc'], data['batch'], 1)[0]


@pytest.mark.parametrize('name', sorted(MADELUNG))
@pytest.mark.parametrize(('method', 'rtol'), [('ewald', 1e-6), ('pme', 1e-3)])
def test_madelung_constant(name, method, rtol):
    atoms = BUILDERS[name](R0[name])
    n_formula = len(atoms) // 2
    madelung = -float(_energy(atoms, method)) * R0[name] / (COULOMB_CONSTANT * n_formula)
    assert madelung == pytest.approx(MADELUNG[name], rel=rtol)


def test_madelung_scales_with_charge_squared():
    atoms = rocksalt(2.5, charge=2.0)
    madelung = -float(_energy(atoms)) * 2.5 / (COULOMB_CONSTANT * 4.0)
    assert madelung == pytest.approx(MADELUNG['rocksalt'], rel=1e-7)


@pytest.mark.parametrize('name', ['rocksalt', 'zincblende'])
def test_primitive_conventional_supercell_same_energy_per_formula_unit(name):
    primitive = BUILDERS[name](R0[name])
    conventional = conventional_cell(primitive)
    supercell = make_supercell(primitive, np.array([[2, 1, 0], [0, 1, 0], [0, 1, 2]]))
    per_fu = [float(_energy(a, accuracy=1e-12)) / (len(a) // 2) for a in (primitive, conventional, supercell)]
    assert len(conventional) == 8
    assert per_fu[1] == pytest.approx(per_fu[0], rel=1e-9)
    assert per_fu[2] == pytest.approx(per_fu[0], rel=1e-9)


def _pymatgen(atoms):
    pytest.importorskip('pymatgen')
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.ewald import EwaldSummation

    structure = Structure(
        Lattice(atoms.cell.array), atoms.get_chemical_symbols(), atoms.positions, coords_are_cartesian=True
    )
    structure.add_site_property('charge', atoms.get_initial_charges().tolist())
    ewald = EwaldSummation(structure, acc_factor=20.0, compute_forces=True)
    return ewald.total_energy, ewald.forces


@pytest.mark.parametrize(('seed', 'net_charge'), [(0, 0.0), (1, 0.0), (2, 1.3)])
def test_agrees_with_pymatgen_random_triclinic(seed, net_charge):
    atoms = random_ionic_system(12, density=0.05, seed=seed, net_charge=net_charge)
    ref_energy, ref_forces = _pymatgen(atoms)
    data = batch_from_atoms([atoms])
    positions = data['positions'].requires_grad_(True)
    energy = ewald_energy(positions, data['charges'], data['cell'][0], accuracy=1e-10)
    (grad,) = torch.autograd.grad(energy, positions)
    # pymatgen's CONV_FACT differs from 14.399645 in the 8th digit
    assert float(energy.detach()) == pytest.approx(ref_energy, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(-grad.numpy(), ref_forces, rtol=1e-5, atol=1e-5)


def test_pme_agrees_with_ewald_on_random_charged_system():
    atoms = random_ionic_system(60, density=0.08, seed=4, net_charge=0.7)
    data = batch_from_atoms([atoms])
    args = (data['positions'], data['charges'], data['cell'][0])
    reference = ewald_energy(*args, accuracy=1e-10)
    scale = COULOMB_CONSTANT * float((data['charges'] ** 2).sum())
    for accuracy in (1e-4, 1e-6):
        energy = pme_energy(*args, accuracy=accuracy)
        assert abs(float(energy - reference)) < 10 * accuracy * scale


def test_energy_independent_of_splitting_parameter_with_background():
    atoms = random_ionic_system(10, density=0.06, seed=7, net_charge=2.0)
    data = batch_from_atoms([atoms])
    args = (data['positions'], data['charges'], data['cell'][0])
    p = math.sqrt(-math.log(1e-13))
    energies = [float(ewald_energy(*args, parameters=EwaldParameters(a, p / a, 2 * a * p))) for a in (0.3, 0.45, 0.7)]
    assert energies[1] == pytest.approx(energies[0], rel=1e-10, abs=1e-9)
    assert energies[2] == pytest.approx(energies[0], rel=1e-10, abs=1e-9)


def test_uniform_scaling_gives_one_over_s():
    atoms = random_ionic_system(10, density=0.06, seed=8, net_charge=0.5)
    e1 = float(_energy(atoms))
    atoms.set_cell(atoms.cell.array * 1.37, scale_atoms=True)
    assert float(_energy(atoms)) == pytest.approx(e1 / 1.37, rel=1e-8)


@pytest.mark.parametrize('method', ['ewald', 'pme'])
def test_forces_stress_and_invariance(method):
    atoms = random_ionic_system(8, density=0.05, seed=9, net_charge=0.3)
    data = batch_from_atoms([atoms])
    module = CoulombEnergy(method=method, accuracy=1e-10, pme_accuracy=1e-6)

    def energy_fn(positions, cell):
        return module(positions, data['charges'], cell, data['pbc'], data['batch'], 1)

    check_forces(energy_fn, data['positions'], data['cell'], atol=1e-6, rtol=1e-5, atoms=[0, 3])
    check_stress(energy_fn, data['positions'], data['cell'], data['batch'], atol=1e-7, rtol=1e-5)
    tol = 1e-9 if method == 'ewald' else 1e-4
    check_translation_invariance(energy_fn, data['positions'], data['cell'], atol=tol, rtol=tol)
    check_rotation_invariance(energy_fn, data['positions'], data['cell'], data['batch'], atol=tol, rtol=tol)


def test_neutral_molecule_in_growing_box_tends_to_direct_sum():
    atoms = random_ionic_system(6, density=0.05, seed=11)
    positions = torch.as_tensor(atoms.positions - atoms.positions.mean(0), dtype=torch.float64)
    charges = torch.as_tensor(atoms.get_initial_charges(), dtype=torch.float64)
    batch = torch.zeros(6, dtype=torch.int64)
    module = CoulombEnergy()
    direct = float(
        module(
            positions, charges, torch.zeros(1, 3, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.bool), batch, 1
        )[0]
    )
    errors = []
    for length in (20.0, 40.0, 80.0):
        cell = torch.eye(3, dtype=torch.float64).unsqueeze(0) * length
        errors.append(
            abs(float(module(positions, charges, cell, torch.ones(1, 3, dtype=torch.bool), batch, 1)[0]) - direct)
        )
    # the leading finite-size term of a neutral cluster (tin-foil) is the dipole term ~ mu^2 / L^3
    assert errors[1] < errors[0] / 6
    assert errors[2] < errors[1] / 6
    assert errors[2] < 1e-3


def test_slab_dipole_correction_converges_with_vacuum():
    atoms = random_ionic_system(6, density=0.05, seed=12)
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    positions[:, 2] = positions[:, 2] % 5.0  # slab thickness 5 Å
    charges = torch.as_tensor(atoms.get_initial_charges(), dtype=torch.float64)
    batch = torch.zeros(6, dtype=torch.int64)
    pbc = torch.tensor([[True, True, False]])
    cell = torch.as_tensor(atoms.cell.array, dtype=torch.float64).clone()
    cell[:2, 2] = 0.0
    module = CoulombEnergy()
    energies, uncorrected = [], []
    for height in (30.0, 60.0, 120.0):
        cell[2] = torch.tensor([1.0, -2.0, height], dtype=torch.float64)
        energies.append(float(module(positions, charges, cell.unsqueeze(0), pbc, batch, 1)[0]))
        uncorrected.append(
            float(module(positions, charges, cell.unsqueeze(0), torch.ones(1, 3, dtype=torch.bool), batch, 1)[0])
        )
    # without the correction the energy drifts as 1/L_z; with it, it is converged to the 2D-periodic value
    assert abs(uncorrected[2] - uncorrected[0]) > 0.05
    assert max(abs(e - energies[0]) for e in energies) < 1e-6


def test_auto_method_and_batch_equals_single():
    structures = [rocksalt(2.82), random_ionic_system(10, seed=13, net_charge=1.0), random_ionic_system(5, seed=14)]
    structures[2].pbc = False
    data = batch_from_atoms(structures)
    module = CoulombEnergy(pme_threshold=9)
    assert module.periodic_method(10) == 'pme'
    assert module.periodic_method(2) == 'ewald'
    batched = module(data['positions'], data['charges'], data['cell'], data['pbc'], data['batch'], 3)
    for s, atoms in enumerate(structures):
        single = batch_from_atoms([atoms])
        expected = module(single['positions'], single['charges'], single['cell'], single['pbc'], single['batch'], 1)
        assert float(batched[s]) == pytest.approx(float(expected[0]), rel=1e-12)


def test_ewald_parameters_follow_accuracy():
    cell = torch.eye(3, dtype=torch.float64) * 10.0
    loose, tight = ewald_parameters(cell, 100, 1e-4), ewald_parameters(cell, 100, 1e-12)
    assert tight.r_cut > loose.r_cut
    assert tight.k_cut > loose.k_cut
    assert math.erfc(tight.alpha * tight.r_cut) < 1e-11
    with pytest.raises(ValueError, match='accuracy must be in'):
        ewald_parameters(cell, 100, 2.0)


@pytest.mark.parametrize('implementation', ['ewald', 'pme'])
def test_shared_full_neighbor_list_gives_same_energy(implementation):
    data = batch_from_atoms([random_ionic_system(30, density=0.08, seed=15, net_charge=0.2)])
    args = (data['positions'], data['charges'], data['cell'][0])
    nl = neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 7.0)  # larger cutoff: masked
    if implementation == 'ewald':
        parameters = ewald_parameters(data['cell'][0], 30, 1e-8)
        nl = neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], parameters.r_cut + 0.5)
        own, shared = ewald_energy(*args, parameters=parameters), ewald_energy(*args, parameters=parameters, nl=nl)
    else:
        parameters = pme_parameters(1e-5)
        own = pme_energy(*args, parameters=parameters)
        shared = pme_energy(*args, parameters=parameters, nl=nl)
    assert float(shared) == pytest.approx(float(own), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize('which', ['ewald', 'pme', 'pair', 'point_pair'])
def test_low_level_functions_refuse_charge_columns(which):
    """Charges of shape (n, 1) used to broadcast against (P,) pair terms into a silently wrong energy."""
    from les_model.electrostatics.realspace import gaussian_pair_energy

    positions = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.5, 0.0]], dtype=torch.float64)
    cell = torch.eye(3, dtype=torch.float64) * 8.0
    column = torch.tensor([[1.0], [-0.5], [-0.5]], dtype=torch.float64)
    call = {
        'ewald': lambda q: ewald_energy(positions, q, cell),
        'pme': lambda q: pme_energy(positions, q, cell),
        'pair': lambda q: gaussian_pair_energy(positions, q, 1.0),
        'point_pair': lambda q: gaussian_pair_energy(positions, q, 0.0),
    }[which]
    assert torch.isfinite(call(column[:, 0]))  # the (n,) form works
    with pytest.raises(ValueError, match=r'charges must have shape \(3,\), got \(3, 1\)'):
        call(column)


def test_pme_agrees_with_torchpme_on_random_charged_system():
    """An independent implementation (torch-pme, Lagrange interpolation) as a cross-check of energy and forces."""
    torchpme = pytest.importorskip('torchpme')
    data = batch_from_atoms([random_ionic_system(60, density=0.08, seed=4, net_charge=0.7)])
    positions = data['positions'].clone().requires_grad_(True)
    charges, cell = data['charges'], data['cell'][0]
    parameters = pme_parameters(1e-6)
    own = pme_energy(positions, charges, cell, parameters=parameters)
    (own_forces,) = torch.autograd.grad(-own, positions)
    nl = neighbor_list(positions.detach(), data['cell'], data['pbc'], data['batch'], parameters.r_cut, full_list=False)
    distances = torch.linalg.norm(edge_vectors(positions, data['cell'], data['batch'], nl), dim=1)
    calculator = torchpme.PMECalculator(
        torchpme.CoulombPotential(smearing=parameters.smearing), mesh_spacing=0.25 * parameters.smearing
    ).to(dtype=positions.dtype)
    potential = calculator(charges.unsqueeze(1), cell, positions, nl.edge_index.T, distances)
    reference = COULOMB_CONSTANT * (charges * potential[:, 0]).sum()
    (reference_forces,) = torch.autograd.grad(-reference, positions)
    scale = COULOMB_CONSTANT * float((charges**2).sum())
    assert abs(float(own - reference)) < 1e-5 * scale
    # PME forces from mesh interpolation agree to ~1e-3 of the largest force
    torch.testing.assert_close(own_forces, reference_forces, rtol=0, atol=2e-3 * float(reference_forces.abs().max()))
