"""Reusable physics checks: finite-difference forces and stress, rotation and translation invariance.

Each check takes an ``energy_fn(positions (N, 3), cell (B, 3, 3)) -> energy`` (any shape; it is summed) that builds
its result with torch operations, so the same checks apply to the electrostatics modules and to trainable models.
Run them in float64. The ``check_*`` functions raise :class:`AssertionError` with the largest deviation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    'autograd_forces',
    'autograd_stress',
    'check_forces',
    'check_rotation_invariance',
    'check_stress',
    'check_translation_invariance',
    'finite_difference_forces',
    'finite_difference_stress',
    'random_rotation',
]

EnergyFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _energy(energy_fn: EnergyFn, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    return energy_fn(positions, cell).sum()


def autograd_forces(energy_fn: EnergyFn, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Forces ``-dE/dr`` by autograd.

    :param energy_fn: ``(positions, cell) -> energy``.
    :param positions: (N, 3) positions in Å.
    :param cell: (B, 3, 3) cells in Å.
    :return: (N, 3) forces in eV/Å.
    """
    pos = positions.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_energy(energy_fn, pos, cell.detach()), pos)
    return -grad


def finite_difference_forces(
    energy_fn: EnergyFn, positions: torch.Tensor, cell: torch.Tensor, delta: float = 1e-4, atoms=None
) -> torch.Tensor:
    """Forces by central differences, ``-(E(r + h) - E(r - h)) / 2h``.

    :param energy_fn: ``(positions, cell) -> energy``.
    :param positions: (N, 3) positions in Å.
    :param cell: (B, 3, 3) cells in Å.
    :param delta: displacement h in Å.
    :param atoms: indices of the atoms to displace (default all); other rows are NaN.
    :return: (N, 3) forces in eV/Å.
    """
    pos = positions.detach().clone()
    cell = cell.detach()
    forces = torch.full_like(pos, float('nan'))
    for i in range(pos.shape[0]) if atoms is None else atoms:
        for b in range(3):
            plus, minus = pos.clone(), pos.clone()
            plus[i, b] += delta
            minus[i, b] -= delta
            with torch.no_grad():
                diff = _energy(energy_fn, plus, cell) - _energy(energy_fn, minus, cell)
            forces[i, b] = -diff / (2.0 * delta)
    return forces


def _strained(positions, cell, batch, strain):
    """Apply per-structure strains (B, 3, 3) as r -> r (I + eps), cell -> cell (I + eps)."""
    deform = torch.eye(3, dtype=cell.dtype, device=cell.device) + strain
    return torch.einsum('na,nab->nb', positions, deform[batch]), cell @ deform


def autograd_stress(
    energy_fn: EnergyFn, positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    """Stress ``(1 / V) dE/d(strain)`` by autograd through a symmetric-or-not strain (ASE sign convention).

    :param energy_fn: ``(positions, cell) -> energy (B,)``.
    :param positions: (N, 3) positions in Å.
    :param cell: (B, 3, 3) cells in Å.
    :param batch: (N,) int64 structure index of each atom.
    :return: (B, 3, 3) stress in eV/Å^3.
    """
    strain = torch.zeros_like(cell).requires_grad_(True)
    pos, cel = _strained(positions.detach(), cell.detach(), batch, strain)
    energy = energy_fn(pos, cel).reshape(-1)
    (grad,) = torch.autograd.grad(energy.sum(), strain)
    volume = torch.linalg.det(cell.detach()).abs()
    return grad / volume[:, None, None]


def finite_difference_stress(
    energy_fn: EnergyFn, positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, delta: float = 1e-5
) -> torch.Tensor:
    """Stress by central differences of the energy under strain, ``(E(+eps) - E(-eps)) / (2 eps V)``.

    :param energy_fn: ``(positions, cell) -> energy (B,)``.
    :param positions: (N, 3) positions in Å.
    :param cell: (B, 3, 3) cells in Å.
    :param batch: (N,) int64 structure index of each atom.
    :param delta: strain step.
    :return: (B, 3, 3) stress in eV/Å^3.
    """
    positions, cell = positions.detach(), cell.detach()
    n_structures = cell.shape[0]
    stress = torch.zeros_like(cell)
    volume = torch.linalg.det(cell).abs()
    for a in range(3):
        for b in range(3):
            strain = torch.zeros_like(cell)
            strain[:, a, b] = delta
            with torch.no_grad():
                e_plus = energy_fn(*_strained(positions, cell, batch, strain)).reshape(n_structures)
                e_minus = energy_fn(*_strained(positions, cell, batch, -strain)).reshape(n_structures)
            stress[:, a, b] = (e_plus - e_minus) / (2.0 * delta * volume)
    return stress


def random_rotation(dtype=torch.float64, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random proper rotation matrix (3, 3) (QR of a Gaussian matrix, sign-fixed, det = +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=dtype, device=device, generator=generator))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def check_forces(
    energy_fn: EnergyFn,
    positions: torch.Tensor,
    cell: torch.Tensor,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    delta: float = 1e-4,
    atoms=None,
) -> None:
    """Assert that autograd forces match central finite differences.

    :param atoms: indices of the atoms to check (default all).
    """
    auto = autograd_forces(energy_fn, positions, cell)
    fd = finite_difference_forces(energy_fn, positions, cell, delta=delta, atoms=atoms)
    idx = torch.arange(positions.shape[0]) if atoms is None else torch.as_tensor(atoms)
    err = (auto[idx] - fd[idx]).abs()
    tol = atol + rtol * fd[idx].abs()
    if not bool((err <= tol).all()):
        raise AssertionError(f'forces differ from finite differences by up to {float(err.max()):.3g} eV/Å')


def check_stress(
    energy_fn: EnergyFn,
    positions: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor,
    atol: float = 1e-7,
    rtol: float = 1e-5,
    delta: float = 1e-5,
) -> None:
    """Assert that the autograd stress matches central finite differences of the strained energy."""
    auto = autograd_stress(energy_fn, positions, cell, batch)
    fd = finite_difference_stress(energy_fn, positions, cell, batch, delta=delta)
    err = (auto - fd).abs()
    if not bool((err <= atol + rtol * fd.abs()).all()):
        raise AssertionError(f'stress differs from finite differences by up to {float(err.max()):.3g} eV/Å^3')


def check_rotation_invariance(
    energy_fn: EnergyFn,
    positions: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor,
    atol: float = 1e-8,
    rtol: float = 1e-8,
    generator: torch.Generator | None = None,
) -> None:
    """Assert that energies are unchanged and forces rotate along under a random rotation of positions and cells."""
    rot = random_rotation(positions.dtype, positions.device, generator)
    e0 = energy_fn(positions.detach(), cell.detach())
    e1 = energy_fn(positions.detach() @ rot.T, cell.detach() @ rot.T)
    if not torch.allclose(e0, e1, atol=atol, rtol=rtol):
        raise AssertionError(f'energy changed under rotation by {float((e0 - e1).abs().max()):.3g} eV')
    f0 = autograd_forces(energy_fn, positions, cell)
    f1 = autograd_forces(energy_fn, positions @ rot.T, cell @ rot.T)
    if not torch.allclose(f0 @ rot.T, f1, atol=atol * 10, rtol=rtol * 10):
        raise AssertionError(f'forces are not equivariant: deviation {float((f0 @ rot.T - f1).abs().max()):.3g} eV/Å')


def check_translation_invariance(
    energy_fn: EnergyFn,
    positions: torch.Tensor,
    cell: torch.Tensor,
    atol: float = 1e-8,
    rtol: float = 1e-8,
    shift: torch.Tensor | None = None,
) -> None:
    """Assert that energies are unchanged when every atom is shifted by the same vector (default a random one)."""
    if shift is None:
        shift = torch.randn(3, dtype=positions.dtype, device=positions.device) * 3.0
    e0 = energy_fn(positions.detach(), cell.detach())
    e1 = energy_fn(positions.detach() + shift, cell.detach())
    if not torch.allclose(e0, e1, atol=atol, rtol=rtol):
        raise AssertionError(f'energy changed under translation by {float((e0 - e1).abs().max()):.3g} eV')
