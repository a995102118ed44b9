r"""Electrical response: dipoles, periodic polarization and Born effective charges (BEC) by autograd.

Conventions (charges in e, positions in Å):

* Dipole of a finite structure: :math:`\mu = \sum_i q_i r_i` (e Å) about the origin of the Cartesian frame (for a
  charged structure the dipole depends on that origin; pass ``origin`` to choose it).
* Periodic "polarization dipole" (e Å per cell; divide by the cell volume for a polarization in e/Å^2): with
  fractional coordinates :math:`s_{j,a}` along lattice vector :math:`a_a`,

  .. math::

      \varphi_a = \operatorname{Im} \ln \prod_j e^{2 \pi i q_j s_{j,a}} = 2 \pi \sum_j q_j s_{j,a}
      \pmod{2\pi}, \qquad \mu = \sum_a \frac{\varphi_a}{2 \pi} a_a ,

  i.e. the classical point-charge Berry phase. It is the dipole of the cell defined modulo the lattice vectors
  (the polarization quantum :math:`e R / V` for unit charges), with :math:`\varphi_a \in (-\pi, \pi]`, and its
  gradient is exactly that of :math:`\sum_j q_j r_j`: rigid ions have :math:`Z^* = q`. (The form
  :math:`\operatorname{Im} \ln \sum_j q_j e^{2 \pi i s_{j,a}}` is invariant under :math:`q \to c q` and so is not a
  polarization of classical charges; it is not used.) Wrapping atom j by a lattice vector R changes it by
  :math:`q_j R`, a lattice vector only for integer charges: with latent (fractional) charges compare polarizations
  along unwrapped trajectories, or use :func:`local_born_effective_charges` for BECs.
* Born effective charges :math:`Z^*_{i,ab} = \partial \mu_a / \partial r_{i,b}` (e), optionally scaled by
  :math:`1 / \sqrt{\varepsilon_\infty}`; the acoustic sum rule :math:`\sum_i Z^*_i = 0` holds for neutral
  structures and is enforced by subtracting the per-structure mean.
* For periodic structures whose charges depend on the positions, the derivative of the wrapped polarization picks up
  :math:`\sum_j s_j \partial q_j / \partial r_i` terms that depend on where atoms are wrapped.
  :func:`local_born_effective_charges` uses instead the phase-referenced structure factor of the smallest k-vector
  along each reciprocal direction, :math:`S_a = \sum_j q_j e^{2 \pi i s_{j,a}}`,

  .. math::

      Z^*_{i,cb} = \sum_a a_{a,c} \operatorname{Re}\left[ e^{-2 \pi i s_{i,a}}
      \frac{\partial S_a}{2 \pi i \, \partial r_{i,b}} \right],

  which is exactly :math:`q_i \delta_{cb}` for rigid ions, invariant under translations and wrapping, and tends to
  the dipole derivative for a molecule in a large box.
"""

from __future__ import annotations

import math

import torch

from les_model.electrostatics.polarization import divide_by_sqrt_eps_inf

__all__ = [
    'born_effective_charges',
    'dipole_moment',
    'local_born_effective_charges',
    'polarization',
]


def _sum_per_structure(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    out = values.new_zeros((n_structures, *values.shape[1:]))
    return out.index_add(0, batch, values)


def dipole_moment(
    positions: torch.Tensor,
    charges: torch.Tensor,
    batch: torch.Tensor,
    n_structures: int,
    origin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dipole ``mu = sum_i q_i (r_i - origin)`` of every structure, in e Å.

    :param positions: (N, 3) positions in Å.
    :param charges: (N,) charges in e.
    :param batch: (N,) int64 structure index of each atom.
    :param n_structures: B.
    :param origin: optional (B, 3) origin of each structure in Å (default: Cartesian origin).
    :return: (B, 3) dipoles in e Å.
    """
    if positions.shape != (charges.shape[0], 3):
        raise ValueError(f'positions must have shape ({charges.shape[0]}, 3), got {tuple(positions.shape)}')
    rel = positions if origin is None else positions - origin[batch]
    return _sum_per_structure(charges.unsqueeze(1) * rel, batch, n_structures)


def polarization(
    positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, n_structures: int
) -> torch.Tensor:
    """Periodic polarization dipole (point-charge Berry phase, see module docstring), in e Å per cell.

    :param positions: (N, 3) positions in Å.
    :param charges: (N,) charges in e.
    :param cell: (B, 3, 3) lattice vectors as rows in Å.
    :param batch: (N,) int64 structure index of each atom.
    :param n_structures: B.
    :return: (B, 3) Cartesian dipole per cell in e Å, each lattice component in (-1/2, 1/2] lattice vectors.
    """
    inv_cell = torch.linalg.inv(cell)
    frac = torch.einsum('nb,nba->na', positions, inv_cell[batch])
    sums = _sum_per_structure(charges.unsqueeze(1) * frac, batch, n_structures)
    # phase 2 pi sum q s wrapped to (-pi, pi]; the shift is piecewise constant so gradients are those of sum q s
    phase = 2.0 * math.pi * sums
    wrapped = phase - 2.0 * math.pi * torch.round(phase.detach() / (2.0 * math.pi))
    return torch.einsum('ba,bac->bc', wrapped / (2.0 * math.pi), cell)


def born_effective_charges(
    dipole: torch.Tensor,
    positions: torch.Tensor,
    eps_inf: float | torch.Tensor | None = None,
    create_graph: bool = False,
) -> torch.Tensor:
    """Born effective charges ``Z*_{i,ab} = d mu_a / d r_{i,b}`` by autograd, in e.

    ``dipole`` row ``s`` must depend only on the atoms of structure ``s`` (true for batched models), so one backward
    pass per Cartesian component gives every atom's derivative of its own structure's dipole.

    :param dipole: (B, 3) dipole or polarization dipole in e Å, computed from ``positions`` with a graph.
    :param positions: (N, 3) positions in Å with ``requires_grad=True``.
    :param eps_inf: optional high-frequency dielectric constant; the result is divided by ``sqrt(eps_inf)``.
    :param create_graph: keep the graph (e.g. to train on BECs).
    :return: (N, 3, 3) tensor ``Z[i, a, b]``.
    """
    if dipole.dim() != 2 or dipole.shape[1] != 3:
        raise ValueError(f'dipole must have shape (B, 3), got {tuple(dipole.shape)}')
    if not positions.requires_grad:
        raise ValueError('positions must have requires_grad=True and be the input the dipole was computed from')
    rows = []
    for a in range(3):
        (grad,) = torch.autograd.grad(
            dipole[:, a].sum(), positions, retain_graph=True, create_graph=create_graph, allow_unused=True
        )
        rows.append(torch.zeros_like(positions) if grad is None else grad)
    z = torch.stack(rows, dim=1)
    if eps_inf is not None:
        z = divide_by_sqrt_eps_inf(z, eps_inf)
    return z


def local_born_effective_charges(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor,
    n_structures: int,
    create_graph: bool = False,
) -> torch.Tensor:
    """Phase-referenced Born effective charges of periodic structures (see module docstring), in e.

    :param positions: (N, 3) positions in Å with ``requires_grad=True``.
    :param charges: (N,) charges in e, computed from ``positions`` (with a graph) or fixed.
    :param cell: (B, 3, 3) lattice vectors as rows in Å.
    :param batch: (N,) int64 structure index of each atom.
    :param n_structures: B.
    :param create_graph: keep the graph (e.g. to train on BECs).
    :return: (N, 3, 3) tensor ``Z[i, c, b]`` (c: dipole component, b: displacement component).
    """
    if not positions.requires_grad:
        raise ValueError('positions must have requires_grad=True and be the input the charges were computed from')
    inv_cell = torch.linalg.inv(cell)
    theta = 2.0 * math.pi * torch.einsum('nb,nba->na', positions, inv_cell[batch])  # (N, 3) phases 2 pi s
    re = _sum_per_structure(charges.unsqueeze(1) * torch.cos(theta), batch, n_structures)  # (B, 3)
    im = _sum_per_structure(charges.unsqueeze(1) * torch.sin(theta), batch, n_structures)
    phase = theta.detach() if not create_graph else theta
    rows = []
    for a in range(3):
        (grad_re,) = torch.autograd.grad(re[:, a].sum(), positions, retain_graph=True, create_graph=create_graph)
        (grad_im,) = torch.autograd.grad(im[:, a].sum(), positions, retain_graph=True, create_graph=create_graph)
        rows.append((torch.cos(phase[:, a, None]) * grad_im - torch.sin(phase[:, a, None]) * grad_re) / (2.0 * math.pi))
    z_frac = torch.stack(rows, dim=1)  # (N, a, b)
    return torch.einsum('nac,nab->ncb', cell[batch], z_frac)
