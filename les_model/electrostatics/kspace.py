"""Reciprocal-space helpers shared by the LES and Ewald sums: k-vectors, switching weights, structure factors.

All k-vectors are generated on a half space (one of each ``+k / -k`` pair), so sums over the full sphere are twice
the half-space sums. The integer Miller indices are chosen without gradients; the Cartesian k-vectors are
``n @ (2 pi cell^-T)`` and keep their gradient with respect to the cell.
"""

import math

import torch

__all__ = [
    'half_space_kvectors',
    'reciprocal_cell',
    'structure_factor_sum',
    'switching_weight',
]

#: Largest number of (atom, k-vector) phase entries evaluated at once.
_CHUNK_ELEMENTS = 2**22


def reciprocal_cell(cell: torch.Tensor) -> torch.Tensor:
    """Reciprocal lattice vectors as rows, ``b_i . a_j = 2 pi delta_ij``.

    :param cell: (..., 3, 3) lattice vectors as rows in Å.
    :return: (..., 3, 3) reciprocal vectors as rows in 1/Å.
    """
    return 2.0 * math.pi * torch.linalg.inv(cell).transpose(-1, -2)


def half_space_kvectors(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """All reciprocal lattice vectors with ``0 < |k| < k_cut``, one of each ``(k, -k)`` pair.

    :param cell: (3, 3) lattice vectors as rows in Å (non-singular).
    :param k_cut: cutoff in 1/Å.
    :return: (K, 3) k-vectors in 1/Å, differentiable with respect to ``cell``.
    """
    recip = reciprocal_cell(cell)
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    n_max = [int(math.floor(k_cut * float(length) / (2.0 * math.pi))) for length in lengths.unbind(0)]
    ranges = [torch.arange(-m, m + 1, device=cell.device, dtype=cell.dtype) for m in n_max]
    n = torch.cartesian_prod(ranges[0], ranges[1], ranges[2]).reshape(-1, 3)
    positive = (n[:, 0] > 0) | ((n[:, 0] == 0) & (n[:, 1] > 0)) | ((n[:, 0] == 0) & (n[:, 1] == 0) & (n[:, 2] > 0))
    n = n[positive]
    k_norm = torch.linalg.norm(n @ recip.detach(), dim=1)
    n = n[k_norm < k_cut]
    return n @ recip


def switching_weight(k_norm: torch.Tensor, k_cut: float, width: float) -> torch.Tensor:
    """Smooth cutoff in |k|: 1 below ``k_cut - width``, cosine down to 0 at ``k_cut`` (continuous with its derivative).

    :param k_norm: (K,) |k| in 1/Å.
    :param k_cut: cutoff in 1/Å.
    :param width: switching width in 1/Å (0 gives a hard cutoff).
    :return: (K,) weights in [0, 1].
    """
    if width <= 0:
        return (k_norm < k_cut).to(k_norm.dtype)
    x = ((k_norm - (k_cut - width)) / width).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * x))


def structure_factor_sum(
    positions: torch.Tensor,
    charges: torch.Tensor,
    kvectors: torch.Tensor,
    weights: torch.Tensor,
    chunk_elements: int = _CHUNK_ELEMENTS,
) -> torch.Tensor:
    """``sum_k weights_k |S(k)|^2`` with ``S(k) = sum_i q_i exp(i k . r_i)``, evaluated in chunks of k-vectors.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) or (n, C) charges in e (C channels are summed independently).
    :param kvectors: (K, 3) k-vectors in 1/Å.
    :param weights: (K,) weights.
    :param chunk_elements: largest number of (atom, k-vector) phases held at once (memory bound).
    :return: scalar tensor (sum over channels).
    """
    n = positions.shape[0]
    total = positions.new_zeros(())
    if kvectors.shape[0] == 0 or n == 0:
        return total + 0.0 * (weights.sum() + positions.sum() + charges.sum())
    q = charges if charges.dim() == 2 else charges.unsqueeze(1)
    chunk = max(1, chunk_elements // max(n, 1))
    for start in range(0, kvectors.shape[0], chunk):
        k = kvectors[start : start + chunk]
        phase = positions @ k.T
        re = q.T @ torch.cos(phase)
        im = q.T @ torch.sin(phase)
        total = total + ((re * re + im * im) * weights[start : start + chunk]).sum()
    return total
