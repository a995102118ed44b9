"""QEq: constraint, stationarity, and agreement with a direct numpy solve built from the LES energy's Hessian."""

import numpy as np
import pytest
import torch

from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.nn.qeq import QEq
from les_model.testing.physics import check_forces
from les_model.testing.structures import batch_from_atoms, random_ionic_system


def _systems():
    periodic = random_ionic_system(7, density=0.06, seed=50)
    molecule = random_ionic_system(5, density=0.06, seed=51)
    molecule.pbc = False
    slab = random_ionic_system(6, density=0.04, seed=52)
    slab.pbc = (True, True, False)
    slab.cell[2] = [0.0, 0.0, 30.0]
    return batch_from_atoms([periodic, molecule, slab])


def _inputs(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    chi = torch.randn(n, generator=gen, dtype=torch.float64) * 2.0
    hardness = 8.0 + 4.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    return chi, hardness


def test_constraint_and_numpy_reference():
    data = _systems()
    chi, hardness = _inputs(data['positions'].shape[0])
    total = torch.tensor([0.0, 1.0, -0.5], dtype=torch.float64)
    qeq = QEq(sigma=1.0, dl=1.5)
    charges = qeq(chi, hardness, data['positions'], data['cell'], data['pbc'], data['batch'], 3, total)
    sums = torch.zeros(3, dtype=torch.float64).index_add(0, data['batch'], charges)
    torch.testing.assert_close(sums, total, rtol=0, atol=1e-10)

    kernel = qeq.kernel
    for s in range(3):
        mask = data['batch'] == s
        n = int(mask.sum())

        def energy_of(q, s=s, mask=mask):
            pos, cell, pbc = data['positions'][mask], data['cell'][s : s + 1], data['pbc'][s : s + 1]
            return kernel(pos, q, cell, pbc, torch.zeros(len(q), dtype=torch.int64), 1)[0]

        # the LES energy is exactly quadratic in q: its Hessian is the Coulomb matrix
        a = torch.autograd.functional.hessian(energy_of, torch.zeros(n, dtype=torch.float64)).numpy()
        kkt = np.zeros((n + 1, n + 1))
        kkt[:n, :n] = a + np.diag(hardness[mask].numpy())
        kkt[:n, n] = kkt[n, :n] = 1.0
        rhs = np.concatenate([-chi[mask].numpy(), [float(total[s])]])
        reference = np.linalg.solve(kkt, rhs)[:n]
        np.testing.assert_allclose(charges[mask].numpy(), reference, rtol=1e-9, atol=1e-10)

        # stationarity: dE_total/dq_i equal for all atoms (the Lagrange multiplier)
        q = charges[mask].clone().requires_grad_(True)
        total_energy = (chi[mask] * q).sum() + 0.5 * (hardness[mask] * q * q).sum() + energy_of(q)
        (grad,) = torch.autograd.grad(total_energy, q)
        assert float(grad.max() - grad.min()) < 1e-8


def test_charges_are_differentiable_in_positions():
    data = _systems()
    chi, hardness = _inputs(data['positions'].shape[0], seed=1)
    qeq = QEq(kernel=LatentEwald(sigma=1.0, dl=1.5))
    kernel = qeq.kernel

    def energy_fn(positions, cell):
        q = qeq(chi, hardness, positions, cell, data['pbc'], data['batch'], 3)
        electrostatic = kernel(positions, q, cell, data['pbc'], data['batch'], 3)
        return electrostatic + torch.zeros(3, dtype=q.dtype).index_add(
            0, data['batch'], chi * q + 0.5 * hardness * q * q
        )

    check_forces(energy_fn, data['positions'], data['cell'], atol=1e-7, rtol=1e-5, atoms=[1, 8, 13])


def test_rejects_mismatched_hardness():
    data = _systems()
    chi, hardness = _inputs(data['positions'].shape[0])
    with pytest.raises(ValueError, match='hardness must have shape'):
        QEq()(chi, hardness[:-1], data['positions'], data['cell'], data['pbc'], data['batch'], 3)
