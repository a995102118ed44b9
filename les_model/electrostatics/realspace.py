"""Real-space summations: the non-periodic pair sum and the short-ranged Ewald part over a neighbour list.

* :func:`gaussian_pair_energy`: ``sum_{i<j} k_e q_i q_j erf(r_ij / (sqrt(2) sigma)) / r_ij`` over all pairs of a
  non-periodic structure (Gaussian charges), or the bare ``1 / r_ij`` for point charges (``sigma = 0``);
* :func:`erfc_real_space_energy`: ``(k_e / 2) sum'_{i,j,n} q_i q_j erfc(r / (sqrt(2) sigma)) / r`` of a 3D-periodic
  structure within ``r_cut``, the real-space part shared by Ewald (:mod:`.ewald`) and PME (:mod:`.pme`).
"""

import math

import torch

from les_model.data.neighborlist import NeighborList, edge_vectors, neighbor_list
from les_model.electrostatics.kernels import erfc_kernel
from les_model.electrostatics.validation import MIN_DISTANCE, check_charges_shape, check_min_distance
from les_model.units import COULOMB_CONSTANT

__all__ = ['erfc_real_space_energy', 'gaussian_pair_energy', 'real_space_pairs']


@torch.jit.unused
def _check_point_charge_distances(r: torch.Tensor) -> None:
    check_min_distance(r, MIN_DISTANCE)


@torch.jit.unused
def _check_charges(positions: torch.Tensor, charges: torch.Tensor) -> None:
    check_charges_shape(positions, charges)


def gaussian_pair_energy(
    positions: torch.Tensor, charges: torch.Tensor, sigma: float, coulomb_constant: float = COULOMB_CONSTANT
) -> torch.Tensor:
    """Non-periodic smeared Coulomb energy ``sum_{i<j} k_e q_i q_j erf(r_ij / (sqrt(2) sigma)) / r_ij`` in eV.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e (any other shape raises ValueError).
    :param sigma: Gaussian width in Å (> 0), or 0 for bare point charges (not in TorchScript).
    :param coulomb_constant: k_e in eV Å / e^2 (an argument so that TorchScript sees it).
    :return: scalar energy in eV.
    """
    if not torch.jit.is_scripting():
        _check_charges(positions, charges)
    n = positions.shape[0]
    if n < 2:
        return positions.new_zeros([]) + 0.0 * (positions.sum() + charges.sum())
    pairs = torch.triu_indices(n, n, offset=1, device=positions.device)
    i, j = pairs[0], pairs[1]
    r = torch.linalg.norm(positions[j] - positions[i], dim=1)
    if sigma == 0:
        _check_point_charge_distances(r)
    kernel = 1.0 / r if sigma == 0 else torch.erf(r / (math.sqrt(2.0) * sigma)) / r
    return coulomb_constant * (charges[i] * charges[j] * kernel).sum()


def real_space_pairs(
    positions: torch.Tensor, cell: torch.Tensor, r_cut: float, nl: NeighborList | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Pairs of one 3D-periodic structure within ``r_cut``: ``(i, j, r, pair_weight)``.

    :param positions: (n, 3) positions in Å.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param r_cut: cutoff in Å.
    :param nl: optional precomputed full neighbour list with cutoff >= ``r_cut`` (extra pairs are dropped); without it
        a half list is built.
    :return: (P,) atom indices i and j, (P,) distances in Å, and the weight of a pair (0.5 for a full list, which
        counts every pair twice, 1 for a half list).
    :raises ValueError: if two atoms are closer than ``MIN_DISTANCE``.
    """
    n = positions.shape[0]
    pbc = torch.ones(1, 3, dtype=torch.bool, device=positions.device)
    batch = torch.zeros(n, dtype=torch.int64, device=positions.device)
    cells = cell.unsqueeze(0)
    pair_weight = 0.5
    if nl is None:
        nl = neighbor_list(positions, cells, pbc, batch, r_cut, n_structures=1, full_list=False)
        pair_weight = 1.0
    r = torch.linalg.norm(edge_vectors(positions, cells, batch, nl), dim=1)
    check_min_distance(r, MIN_DISTANCE)
    mask = r < r_cut
    i, j = nl.edge_index[:, mask]
    return i, j, r[mask], pair_weight


def erfc_real_space_energy(
    charges: torch.Tensor, i: torch.Tensor, j: torch.Tensor, r: torch.Tensor, pair_weight: float, sigma: float
) -> torch.Tensor:
    """``pair_weight k_e sum_pairs q_i q_j erfc(r / (sqrt(2) sigma)) / r`` in eV.

    :param charges: (n,) charges in e; ``i, j, r, pair_weight`` from :func:`real_space_pairs`; ``sigma`` in Å.
    """
    return pair_weight * COULOMB_CONSTANT * (charges[i] * charges[j] * erfc_kernel(r, sigma)).sum()
