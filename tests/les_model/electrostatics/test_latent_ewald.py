"""LatentEwald (LES) energy: prefactor, limits, smoothness, derivatives, batching."""

import math

import pytest
import torch

from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.electrostatics.realspace import gaussian_pair_energy
from les_model.nn.charge_constraints import enforce_total_charge
from les_model.testing.physics import (
    autograd_forces,
    check_forces,
    check_rotation_invariance,
    check_stress,
    check_translation_invariance,
)
from les_model.testing.structures import MADELUNG, batch_from_atoms, random_ionic_system, rocksalt
from les_model.units import COULOMB_CONSTANT


def _run(module, data):
    return module(data['positions'], data['charges'], data['cell'], data['pbc'], data['batch'], data['n_structures'])


def test_narrow_gaussians_and_fine_resolution_give_madelung_constant():
    # with sigma = 0.3 Å the erfc real-space remainder at r0 = 2.82 Å is ~1e-28, so LES equals the point-charge energy
    data = batch_from_atoms([rocksalt(2.82)])
    energy = _run(LatentEwald(sigma=0.3, dl=0.25), data)
    assert -float(energy[0]) * 2.82 / COULOMB_CONSTANT == pytest.approx(MADELUNG['rocksalt'], rel=1e-8)


def test_molecule_in_growing_box_tends_to_non_periodic_form():
    atoms = random_ionic_system(6, density=0.05, seed=21)
    positions = torch.as_tensor(atoms.positions - atoms.positions.mean(0), dtype=torch.float64)
    charges = torch.as_tensor(atoms.get_initial_charges(), dtype=torch.float64)
    batch = torch.zeros(6, dtype=torch.int64)
    module = LatentEwald(sigma=1.0, dl=1.0)
    reference = gaussian_pair_energy(positions, charges, 1.0)
    molecule = module(
        positions, charges, torch.zeros(1, 3, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.bool), batch, 1
    )
    assert float(molecule[0]) == pytest.approx(float(reference), rel=1e-12)
    errors = []
    for length in (15.0, 30.0, 60.0):
        cell = torch.eye(3, dtype=torch.float64).unsqueeze(0) * length
        energy = module(positions, charges, cell, torch.ones(1, 3, dtype=torch.bool), batch, 1)
        errors.append(abs(float(energy[0] - reference)))
    assert errors[1] < errors[0] / 4
    assert errors[2] < errors[1] / 4
    assert errors[2] < 2e-3


def test_energy_increases_monotonically_and_converges_as_dl_decreases():
    data = batch_from_atoms([random_ionic_system(16, density=0.08, seed=22)])
    energies = [float(_run(LatentEwald(sigma=1.0, dl=dl), data)[0]) for dl in (4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5)]
    steps = [b - a for a, b in zip(energies, energies[1:], strict=False)]
    assert all(step >= -1e-12 for step in steps)  # every added k-vector contributes w f(k) |S(k)|^2 >= 0
    assert abs(steps[-1]) < 1e-6 * max(abs(s) for s in steps) + 1e-10


def test_hard_cutoff_energy_jumps_but_smooth_cutoff_is_continuous():
    atoms = random_ionic_system(12, density=0.08, seed=23)
    data = batch_from_atoms([atoms])
    scales = torch.linspace(1.0, 1.06, 301, dtype=torch.float64)

    def curve(module, stride):
        out = []
        for s in scales[::stride]:
            scaled = dict(data, positions=data['positions'] * s, cell=data['cell'] * s)
            out.append(float(_run(module, scaled)[0]))
        return torch.tensor(out)

    for smooth, continuous in ((True, True), (False, False)):
        module = LatentEwald(sigma=0.7, dl=2.0, smooth_k=smooth)
        fine, coarse = curve(module, 1), curve(module, 10)
        # a continuous curve sampled 10x more finely has ~10x smaller steps; a jump does not shrink
        ratio = float(coarse.diff().abs().max() / fine.diff().abs().max())
        assert (ratio > 5.0) == continuous, (smooth, ratio)


def test_forces_stress_invariance_mixed_batch():
    periodic = random_ionic_system(8, density=0.06, seed=24, net_charge=0.4)
    molecule = random_ionic_system(5, density=0.06, seed=25)
    molecule.pbc = False
    slab = random_ionic_system(6, density=0.04, seed=26)
    slab.pbc = (True, True, False)
    slab.cell[2] = [0.5, 0.0, 30.0]
    data = batch_from_atoms([periodic, molecule, slab])
    module = LatentEwald(sigma=1.0, dl=1.5)

    def energy_fn(positions, cell):
        return module(positions, data['charges'], cell, data['pbc'], data['batch'], 3)

    check_forces(energy_fn, data['positions'], data['cell'], atol=1e-7, rtol=1e-5, atoms=[0, 9, 14])
    check_rotation_invariance(energy_fn, data['positions'], data['cell'], data['batch'], atol=1e-9, rtol=1e-9)
    check_translation_invariance(energy_fn, data['positions'], data['cell'], atol=1e-9, rtol=1e-9)
    only_periodic = batch_from_atoms([periodic])

    def periodic_fn(positions, cell):
        return module(positions, only_periodic['charges'], cell, only_periodic['pbc'], only_periodic['batch'], 1)

    check_stress(periodic_fn, only_periodic['positions'], only_periodic['cell'], only_periodic['batch'])


def test_batch_equals_per_structure_and_float32():
    structures = [random_ionic_system(n, density=0.07, seed=30 + n) for n in (3, 9, 6)]
    structures[1].pbc = False
    data = batch_from_atoms(structures)
    module = LatentEwald()
    batched = _run(module, data)
    assert batched.shape == (3,)
    for s, atoms in enumerate(structures):
        assert float(batched[s]) == pytest.approx(float(_run(module, batch_from_atoms([atoms]))[0]), rel=1e-12)
    single = _run(module, batch_from_atoms(structures, dtype=torch.float32))
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), batched, rtol=1e-4, atol=1e-4)


def test_charge_gradient_is_potential():
    data = batch_from_atoms([random_ionic_system(7, density=0.07, seed=40)])
    charges = data['charges'].clone().requires_grad_(True)
    module = LatentEwald()
    energy = module(data['positions'], charges, data['cell'], data['pbc'], data['batch'], 1)
    (grad,) = torch.autograd.grad(energy.sum(), charges)
    # E is quadratic in q, so q . dE/dq = 2 E
    assert float((grad * charges.detach()).sum()) == pytest.approx(2 * float(energy.detach()), rel=1e-10)


def test_enforce_total_charge():
    charges = torch.tensor([0.3, -0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1])
    out = enforce_total_charge(charges, batch, torch.tensor([1.0, -1.0], dtype=torch.float64))
    sums = torch.zeros(2, dtype=torch.float64).index_add(0, batch, out)
    torch.testing.assert_close(sums, torch.tensor([1.0, -1.0], dtype=torch.float64))
    # uniform shift per structure: differences within a structure unchanged
    torch.testing.assert_close(out[1] - out[0], charges[1] - charges[0])
    neutral = enforce_total_charge(charges, batch)
    assert abs(float(neutral[3:].sum())) < 1e-12
    with pytest.raises(ValueError, match='total_charge must have shape'):
        enforce_total_charge(charges, batch, torch.zeros(3, dtype=torch.float64), n_structures=2)


def test_parameter_validation():
    with pytest.raises(ValueError, match='sigma must be > 0'):
        LatentEwald(sigma=0.0)
    with pytest.raises(ValueError, match='dl must be > 0'):
        LatentEwald(dl=-1.0)
    assert LatentEwald(dl=2.0).k_cut == pytest.approx(math.pi)


def test_mesh_backend_matches_direct_sum_with_derivatives():
    data = batch_from_atoms([random_ionic_system(150, density=0.1, seed=41, net_charge=0.5)])
    direct = LatentEwald(backend='direct')
    mesh = LatentEwald(backend='mesh')
    assert mesh.uses_mesh(10)
    assert not direct.uses_mesh(10**6)
    assert LatentEwald().uses_mesh(5000)
    e_direct, e_mesh = float(_run(direct, data)[0]), float(_run(mesh, data)[0])
    assert e_mesh == pytest.approx(e_direct, rel=1e-4)

    def mesh_fn(positions, cell):
        return mesh(positions, data['charges'], cell, data['pbc'], data['batch'], 1)

    def direct_fn(positions, cell):
        return direct(positions, data['charges'], cell, data['pbc'], data['batch'], 1)

    check_forces(mesh_fn, data['positions'], data['cell'], atol=1e-6, rtol=1e-5, atoms=[0, 77])
    check_stress(mesh_fn, data['positions'], data['cell'], data['batch'], atol=1e-7, rtol=1e-4)
    f_mesh = autograd_forces(mesh_fn, data['positions'], data['cell'])
    f_direct = autograd_forces(direct_fn, data['positions'], data['cell'])
    assert float((f_mesh - f_direct).norm() / f_direct.norm()) < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    from les_model.electrostatics.coulomb import CoulombEnergy

    structures = [random_ionic_system(40, seed=42), random_ionic_system(30, seed=43, net_charge=1.0)]
    structures[1].pbc = False
    cpu = batch_from_atoms(structures)
    gpu = batch_from_atoms(structures, device='cuda')
    for module in (LatentEwald(backend='direct'), LatentEwald(backend='mesh'), CoulombEnergy(method='pme')):
        expected = _run(module, cpu)
        got = _run(module, gpu)
        assert got.device.type == 'cuda'
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize('backend', ['direct', 'mesh'])
def test_force_loss_is_differentiable_in_charges(backend):
    # training on forces needs d/dq of a loss built from dE/dr (double backward); check it against finite differences
    data = batch_from_atoms([random_ionic_system(10, density=0.06, seed=44)])
    module = LatentEwald(backend=backend)

    def force_loss(charges, create_graph):
        positions = data['positions'].clone().requires_grad_(True)
        energy = module(positions, charges, data['cell'], data['pbc'], data['batch'], 1).sum()
        (grad,) = torch.autograd.grad(energy, positions, create_graph=create_graph)
        return (grad**2).sum()

    charges = data['charges'].clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(force_loss(charges, True), charges)
    delta = 1e-5
    for i in (0, 7):
        plus, minus = data['charges'].clone(), data['charges'].clone()
        plus[i] += delta
        minus[i] -= delta
        numeric = (force_loss(plus, False) - force_loss(minus, False)) / (2 * delta)
        assert float(analytic[i]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-7)
