"""Ewald summation: converged point-charge Coulomb energy of one 3D-periodic structure.

.. math::

    E = \\frac{k_e}{2} \\sum_{i,j,n}' q_i q_j \\frac{\\operatorname{erfc}(\\alpha r_{ij,n})}{r_{ij,n}}
      + \\frac{2 \\pi k_e}{V} \\sum_{k \\neq 0} \\frac{e^{-k^2 / (4 \\alpha^2)}}{k^2} |S(k)|^2
      - \\frac{k_e \\alpha}{\\sqrt{\\pi}} \\sum_i q_i^2
      - \\frac{\\pi k_e Q^2}{2 V \\alpha^2}

(real space, reciprocal space, self energy, and the neutralising-background term for a net charge
:math:`Q = \\sum_i q_i`; tin-foil boundary conditions). The splitting parameter :math:`\\alpha` and the cutoffs
follow from a requested accuracy :math:`\\epsilon` with :math:`p = \\sqrt{-\\ln \\epsilon}`:
:math:`r_c = p / \\alpha`, :math:`k_c = 2 \\alpha p`, and :math:`\\alpha` balances the real- and reciprocal-space
work, :math:`\\alpha = \\sqrt{\\pi} (w N / V^2)^{1/6}` (clamped so that :math:`r_c` stays within ``max_cutoff``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from les_model.data.neighborlist import NeighborList, edge_vectors, neighbor_list
from les_model.electrostatics.kspace import half_space_kvectors, structure_factor_sum
from les_model.electrostatics.validation import MIN_DISTANCE, check_min_distance
from les_model.units import COULOMB_CONSTANT

__all__ = ['EwaldParameters', 'ewald_energy', 'ewald_parameters']


class EwaldParameters(NamedTuple):
    """Ewald convergence parameters.

    :ivar alpha: splitting parameter in 1/Å.
    :ivar r_cut: real-space cutoff in Å.
    :ivar k_cut: reciprocal-space cutoff in 1/Å.
    """

    alpha: float
    r_cut: float
    k_cut: float


def ewald_parameters(
    cell: torch.Tensor,
    n_atoms: int,
    accuracy: float = 1e-8,
    weight: float = 1.0,
    max_cutoff: float = 12.0,
    min_cutoff: float = 3.0,
) -> EwaldParameters:
    """Choose the splitting parameter and both cutoffs from a requested accuracy.

    :param cell: (3, 3) lattice vectors as rows in Å.
    :param n_atoms: number of atoms in the cell.
    :param accuracy: target size of the neglected terms relative to one pair interaction, e.g. 1e-8.
    :param weight: relative cost of a real-space pair to a reciprocal term (larger favours reciprocal space).
    :param max_cutoff: largest real-space cutoff in Å.
    :param min_cutoff: smallest real-space cutoff in Å.
    :return: :class:`EwaldParameters`.
    """
    if not 0 < accuracy < 1:
        raise ValueError(f'accuracy must be in (0, 1), got {accuracy}')
    volume = float(torch.linalg.det(cell.detach()).abs())
    p = math.sqrt(-math.log(accuracy))
    alpha = math.sqrt(math.pi) * (weight * max(n_atoms, 1) / volume**2) ** (1.0 / 6.0)
    r_cut = min(max(p / alpha, min_cutoff), max_cutoff)
    alpha = p / r_cut
    return EwaldParameters(alpha=alpha, r_cut=r_cut, k_cut=2.0 * alpha * p)


def ewald_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    accuracy: float = 1e-8,
    parameters: EwaldParameters | None = None,
    nl: NeighborList | None = None,
) -> torch.Tensor:
    """Point-charge Coulomb energy of one 3D-periodic cell by Ewald summation, in eV.

    Differentiable with respect to ``positions``, ``charges`` and ``cell``.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e (a net charge gets a neutralising background).
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param accuracy: requested accuracy (see :func:`ewald_parameters`); ignored when ``parameters`` is given.
    :param parameters: explicit :class:`EwaldParameters`.
    :param nl: optional precomputed full neighbour list with cutoff >= ``parameters.r_cut`` (extra pairs are masked);
        without it a half list is built.
    :return: scalar energy in eV.
    """
    n = positions.shape[0]
    if parameters is None:
        parameters = ewald_parameters(cell, n, accuracy)
    alpha, r_cut, k_cut = parameters
    pbc = torch.ones(1, 3, dtype=torch.bool, device=positions.device)
    batch = torch.zeros(n, dtype=torch.int64, device=positions.device)
    cells = cell.unsqueeze(0)
    pair_weight = 0.5  # a full list counts every pair twice
    if nl is None:
        nl = neighbor_list(positions, cells, pbc, batch, r_cut, n_structures=1, full_list=False)
        pair_weight = 1.0
    r = torch.linalg.norm(edge_vectors(positions, cells, batch, nl), dim=1)
    check_min_distance(r, MIN_DISTANCE)
    i, j = nl.edge_index
    mask = r < r_cut
    r_in = r[mask]
    real = pair_weight * (charges[i[mask]] * charges[j[mask]] * torch.erfc(alpha * r_in) / r_in).sum()

    kvectors = half_space_kvectors(cell, k_cut)
    k_sq = (kvectors * kvectors).sum(dim=1)
    weights = torch.exp(-k_sq / (4.0 * alpha**2)) / k_sq
    volume = torch.linalg.det(cell).abs()
    recip = 4.0 * math.pi / volume * structure_factor_sum(positions, charges, kvectors, weights)

    self_energy = -alpha / math.sqrt(math.pi) * (charges * charges).sum()
    background = -math.pi * charges.sum() ** 2 / (2.0 * volume * alpha**2)
    return COULOMB_CONSTANT * (real + recip + self_energy + background)
