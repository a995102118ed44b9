"""Direct k-space summation: half-space reciprocal lattice vectors and ``sum_k G(k) |S(k)|^2``.

All k-vectors are generated on a half space (one of each ``+k / -k`` pair), so sums over the full sphere are twice
the half-space sums. They are generated one lattice plane ``n_1 = const`` at a time and only inside the cutoff sphere
(a 1000 Å box never builds the full cube of Miller indices), in lexicographic order of ``(n_1, n_2, n_3)``. The
integer Miller indices are chosen without gradients; the Cartesian k-vectors are ``n @ (2 pi cell^-T)`` and keep
their gradient with respect to the cell. :func:`kspace_energy` streams the sum over blocks of k-vectors, so its
memory is bounded by ``chunk_elements`` whatever the number of k-vectors.
"""

import math

import torch

from les_model.electrostatics.kernels import gaussian_kspace_kernel

__all__ = [
    'half_space_kvectors',
    'half_space_miller_indices',
    'kspace_energy',
    'reciprocal_cell',
]

#: Largest number of (atom, k-vector) phase entries evaluated at once.
_CHUNK_ELEMENTS = 2**22
#: Largest number of k-vectors per block of :func:`kspace_energy` (bounds the memory of few-atom, huge cells).
_MAX_BLOCK = 2**18


def reciprocal_cell(cell: torch.Tensor) -> torch.Tensor:
    """Reciprocal lattice vectors as rows, ``b_i . a_j = 2 pi delta_ij``.

    :param cell: (..., 3, 3) lattice vectors as rows in Å.
    :return: (..., 3, 3) reciprocal vectors as rows in 1/Å.
    """
    return 2.0 * math.pi * torch.linalg.inv(cell).transpose(-1, -2)


def _miller_bounds(cell: torch.Tensor, k_cut: float) -> list[int]:
    """Largest |n_a| per axis: ``n_a = k . a_a / (2 pi)`` so ``|n_a| <= k_cut |a_a| / (2 pi)``."""
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    return [int(math.floor(k_cut * float(length) / (2.0 * math.pi))) for length in lengths.unbind(0)]


def _plane_miller_indices(recip: torch.Tensor, n0: int, bounds: list[int], k_cut: float) -> torch.Tensor:
    """(P, 3) Miller indices (as floats) of plane ``n_1 = n0`` in the half space and inside ``|k| < k_cut``.

    Row by row (fixed ``n_1, n_2``) the allowed ``n_3`` form an interval, the roots of the quadratic
    ``|c + n_3 b_3|^2 = k_cut^2`` with ``c = n_1 b_1 + n_2 b_2``; the interval is widened by one on each side and the
    candidates filtered exactly, so only about one row's worth of points outside the sphere is ever built.
    """
    dtype, device = recip.dtype, recip.device
    n1 = torch.arange(-bounds[1], bounds[1] + 1, dtype=dtype, device=device)
    if n0 == 0:  # half space: n_1 > 0, or n_1 = 0 and n_2 > 0, or n_1 = n_2 = 0 and n_3 > 0
        n1 = n1[n1 >= 0]
    c = float(n0) * recip[0] + n1.unsqueeze(1) * recip[1]  # (R, 3)
    b3_sq = (recip[2] * recip[2]).sum()
    cb = c @ recip[2]
    disc = cb * cb - b3_sq * ((c * c).sum(dim=1) - k_cut * k_cut)
    root = torch.sqrt(disc.clamp(min=0.0))
    lo = torch.clamp(torch.floor((-cb - root) / b3_sq) - 1.0, min=-float(bounds[2]))
    hi = torch.clamp(torch.ceil((-cb + root) / b3_sq) + 1.0, max=float(bounds[2]))
    if n0 == 0:
        lo = torch.where(n1 == 0, torch.clamp(lo, min=1.0), lo)
    counts = torch.where(disc >= 0, hi - lo + 1.0, torch.zeros_like(lo)).clamp(min=0.0).to(torch.int64)
    total = int(counts.sum())
    rows = torch.repeat_interleave(torch.arange(n1.shape[0], device=device), counts)
    starts = torch.cumsum(counts, dim=0) - counts
    n3 = lo[rows] + (torch.arange(total, device=device) - starts[rows]).to(dtype)
    n = torch.stack([torch.full_like(n3, float(n0)), n1[rows], n3], dim=1)
    return n[torch.linalg.norm(n @ recip, dim=1) < k_cut]


def half_space_miller_indices(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """Miller indices (K, 3) (floats, no gradient) of all ``0 < |k| < k_cut``, one of each ``(k, -k)`` pair.

    :param cell: (3, 3) lattice vectors as rows in Å (non-singular).
    :param k_cut: cutoff in 1/Å.
    """
    recip = reciprocal_cell(cell.detach())
    bounds = _miller_bounds(cell, k_cut)
    planes = [_plane_miller_indices(recip, n0, bounds, k_cut) for n0 in range(bounds[0] + 1)]
    return torch.cat(planes, dim=0)


def half_space_kvectors(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """All reciprocal lattice vectors with ``0 < |k| < k_cut``, one of each ``(k, -k)`` pair.

    :param cell: (3, 3) lattice vectors as rows in Å (non-singular).
    :param k_cut: cutoff in 1/Å.
    :return: (K, 3) k-vectors in 1/Å, differentiable with respect to ``cell``.
    """
    return half_space_miller_indices(cell, k_cut) @ reciprocal_cell(cell)


def _phase_sum(positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights_k |S(k)|^2`` for one block of k-vectors (k (K, 3), q (n, C))."""
    phase = positions @ k.T
    re = q.T @ torch.cos(phase)
    im = q.T @ torch.sin(phase)
    return ((re * re + im * im) * weights).sum()


def kspace_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    k_cut: float,
    width: float,
    coulomb_constant: float,
    chunk_elements: int = _CHUNK_ELEMENTS,
    max_block: int = _MAX_BLOCK,
) -> torch.Tensor:
    """``(2 pi k_e / V) sum_{0 < |k| < k_cut} w(|k|) exp(-sigma^2 k^2 / 2) / k^2 |S(k)|^2`` in eV, streamed.

    The direct k-space sum of the Gaussian kernel (:func:`~les_model.electrostatics.kernels.gaussian_kspace_kernel`)
    over the full sphere, evaluated on the half space plane by plane in blocks of ``chunk_elements / n`` k-vectors
    (at most 2^18), so that no more than one block of k-vectors and phases is held at once. No self or background
    term.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param sigma: Gaussian width in Å.
    :param k_cut: cutoff in 1/Å.
    :param width: switching width in 1/Å (0: hard cutoff).
    :param coulomb_constant: k_e in eV Å / e^2.
    :param chunk_elements: largest number of (atom, k-vector) phases held at once.
    :param max_block: largest number of k-vectors per block.
    :return: scalar energy in eV, differentiable in positions, charges and cell.
    """
    n = positions.shape[0]
    volume = torch.linalg.det(cell).abs()
    q = charges.unsqueeze(1)
    recip = reciprocal_cell(cell)
    recip_fixed = recip.detach()
    bounds = _miller_bounds(cell, k_cut)
    chunk = min(max(1, chunk_elements // max(n, 1)), max_block)
    total = positions.new_zeros(()) + 0.0 * (positions.sum() + charges.sum() + recip.sum())
    pending: list[torch.Tensor] = []
    n_pending = 0
    for n0 in range(bounds[0] + 2):
        last = n0 == bounds[0] + 1
        if not last:
            plane = _plane_miller_indices(recip_fixed, n0, bounds, k_cut)
            if plane.shape[0] > 0:
                pending.append(plane)
                n_pending += plane.shape[0]
        # emit full blocks (the same blocks as evaluating the whole list in chunks), the rest at the end
        while n_pending >= chunk or (last and n_pending > 0):
            buffer = torch.cat(pending, dim=0)
            take = min(chunk, n_pending)
            k = buffer[:take] @ recip
            weights = gaussian_kspace_kernel((k * k).sum(dim=1), sigma, k_cut, width)
            total = total + _phase_sum(positions, q, k, weights)
            pending = [buffer[take:]]
            n_pending -= take
    return 4.0 * math.pi * coulomb_constant / volume * total
