r"""Ewald summation: converged point-charge Coulomb energy of one 3D-periodic structure.

.. math::

    E = \frac{k_e}{2} \sum_{i,j,n}' q_i q_j \frac{\operatorname{erfc}(\alpha r_{ij,n})}{r_{ij,n}}
      + \frac{2 \pi k_e}{V} \sum_{k \neq 0} \frac{e^{-k^2 / (4 \alpha^2)}}{k^2} |S(k)|^2
      - \frac{k_e \alpha}{\sqrt{\pi}} \sum_i q_i^2
      - \frac{\pi k_e Q^2}{2 V \alpha^2}

(real space, reciprocal space, self energy, and the neutralising-background term for a net charge
:math:`Q = \sum_i q_i`; tin-foil boundary conditions). It is the point-charge kernel split with the Gaussian width
:math:`\sigma = 1 / (\sqrt 2 \alpha)`: the real-space sum of :mod:`.realspace` plus the direct k-space sum of
:mod:`.kspace` with the terms of :mod:`.kernels`. The splitting parameter :math:`\alpha` and the cutoffs
follow from a requested accuracy :math:`\epsilon` with :math:`p = \sqrt{-\ln \epsilon}`:
:math:`r_c = p / \alpha`, :math:`k_c = 2 \alpha p`, and :math:`\alpha` balances the real- and reciprocal-space
work, :math:`\alpha = \sqrt{\pi} (w N / V^2)^{1/6}` (clamped so that :math:`r_c` stays within ``max_cutoff``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from les_model.data.neighborlist import NeighborList
from les_model.electrostatics.kernels import gaussian_self_energy, neutralising_background
from les_model.electrostatics.kspace import kspace_energy
from les_model.electrostatics.realspace import erfc_real_space_energy, real_space_pairs
from les_model.electrostatics.validation import check_charges_shape
from les_model.units import COULOMB_CONSTANT

__all__ = ['EwaldParameters', 'ewald_energy', 'ewald_parameters', 'point_charge_periodic_energy']


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


def point_charge_periodic_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    r_cut: float,
    reciprocal: torch.Tensor,
    nl: NeighborList | None = None,
) -> torch.Tensor:
    """Assemble an Ewald-split point-charge energy in eV from its reciprocal part (any summation of the same split).

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param sigma: splitting width in Å.
    :param r_cut: real-space cutoff in Å.
    :param reciprocal: the k-space part ``(2 pi k_e / V) sum_{k != 0} 4 pi ... |S(k)|^2`` in eV (direct or mesh).
    :param nl: optional full neighbour list with cutoff >= ``r_cut`` (see :func:`~.realspace.real_space_pairs`).
    :return: real space + reciprocal - self + background, in eV.
    """
    i, j, r, pair_weight = real_space_pairs(positions, cell, r_cut, nl)
    real = erfc_real_space_energy(charges, i, j, r, pair_weight, sigma)
    volume = torch.linalg.det(cell).abs()
    self_energy = gaussian_self_energy(charges, sigma, COULOMB_CONSTANT)
    return real + reciprocal - self_energy + neutralising_background(charges, volume, sigma, COULOMB_CONSTANT)


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
    :param charges: (n,) charges in e (a net charge gets a neutralising background); other shapes raise ValueError.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param accuracy: requested accuracy (see :func:`ewald_parameters`); ignored when ``parameters`` is given.
    :param parameters: explicit :class:`EwaldParameters`.
    :param nl: optional precomputed full neighbour list with cutoff >= ``parameters.r_cut`` (extra pairs are masked);
        without it a half list is built.
    :return: scalar energy in eV.
    """
    check_charges_shape(positions, charges)
    if parameters is None:
        parameters = ewald_parameters(cell, positions.shape[0], accuracy)
    alpha, r_cut, k_cut = parameters
    sigma = 1.0 / (math.sqrt(2.0) * alpha)
    reciprocal = kspace_energy(positions, charges, cell, sigma, k_cut, 0.0, COULOMB_CONSTANT)
    return point_charge_periodic_energy(positions, charges, cell, sigma, r_cut, reciprocal, nl)
