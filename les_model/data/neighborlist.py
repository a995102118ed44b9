"""Real-space neighbour lists for batches of structures, built with vesin.

Convention: for edge ``e = (i, j)`` the pair vector is ``r_ij = positions[j] - positions[i] + shifts[e]`` with
``shifts[e] = cell_shifts[e] @ cell[batch[i]]``. The list is full by default (both ``i -> j`` and ``j -> i``; a half
list on request) and never contains a self pair at zero shift. The integer cell shifts are computed without
gradients; the Cartesian shifts are recomputed from ``cell`` by :func:`edge_vectors`, so energies stay differentiable
with respect to positions *and* cell (stress).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import vesin

from les_model.electrostatics.validation import validate_inputs

__all__ = ['NeighborList', 'edge_vectors', 'neighbor_list']


class NeighborList(NamedTuple):
    """A batched neighbour list.

    :ivar edge_index: (2, E) int64 ``[i, j]`` global atom indices (centre first).
    :ivar shifts: (E, 3) Cartesian periodic shifts in Å, ``cell_shifts @ cell[batch[i]]`` at build time.
    :ivar cell_shifts: (E, 3) integer-valued cell shifts, stored in the float dtype of the positions.
    """

    edge_index: torch.Tensor
    shifts: torch.Tensor
    cell_shifts: torch.Tensor


def neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    batch: torch.Tensor,
    cutoff: float,
    n_structures: int | None = None,
    full_list: bool = True,
) -> NeighborList:
    """Build the neighbour list (full by default) of every structure of a batch within ``cutoff``.

    :param positions: (N, 3) positions in Å (float32 or float64, any device).
    :param cell: (B, 3, 3) lattice vectors as rows in Å; ignored (may be zero) for non-periodic structures.
    :param pbc: (B, 3) bool periodicity flags; mixed flags (slabs) are supported.
    :param batch: (N,) int64 sorted structure index of each atom.
    :param cutoff: cutoff radius in Å (> 0).
    :param n_structures: B, inferred from ``batch`` when None.
    :param full_list: both ``i -> j`` and ``j -> i`` (default); False gives each pair once (half list).
    :return: :class:`NeighborList` with ``edge_index`` (2, E), ``shifts`` (E, 3) and ``cell_shifts`` (E, 3).
    """
    if not cutoff > 0:
        raise ValueError(f'cutoff must be > 0 Å, got {cutoff}')
    n_structures = validate_inputs(positions, cell, pbc, batch, n_structures)
    device, dtype = positions.device, positions.dtype
    counts = torch.bincount(batch, minlength=n_structures).tolist() if positions.shape[0] else [0] * n_structures
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=bool(full_list))
    pos_d = positions.detach()
    cell_d = cell.detach()
    pbc_cpu = pbc.detach().cpu()
    edges, cell_shifts = [], []
    start = 0
    for s, n in enumerate(counts):
        if n == 0:
            continue
        periodic = [bool(x) for x in pbc_cpu[s]]
        box = cell_d[s] if any(periodic) else torch.zeros(3, 3, dtype=dtype, device=device)
        # copy=False: vesin's buffers stay valid while `calculator` lives; the lines below make new tensors anyway
        i, j, shift = calculator.compute(pos_d[start : start + n], box, periodic, 'ijS', copy=False)
        # vesin returns uint64 indices (< 2^63): reinterpret them as int64 without a conversion pass
        i = torch.as_tensor(i, device=device).view(torch.int64)
        j = torch.as_tensor(j, device=device).view(torch.int64)
        edges.append(torch.stack([i, j]) + start)
        cell_shifts.append(torch.as_tensor(shift, device=device).to(dtype))
        start += n
    if len(edges) == 1:
        edge_index, int_shifts = edges[0], cell_shifts[0]
    elif edges:
        edge_index = torch.cat(edges, dim=1)
        int_shifts = torch.cat(cell_shifts, dim=0)
    else:
        edge_index = torch.zeros(2, 0, dtype=torch.int64, device=device)
        int_shifts = torch.zeros(0, 3, dtype=dtype, device=device)
    shifts = cartesian_shifts(int_shifts, cell, batch, edge_index)
    return NeighborList(edge_index=edge_index, shifts=shifts, cell_shifts=int_shifts)


def cartesian_shifts(
    cell_shifts: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, edge_index: torch.Tensor
) -> torch.Tensor:
    """Cartesian shift vectors ``cell_shifts[e] @ cell[batch[i_e]]``, differentiable in ``cell``.

    :param cell_shifts: (E, 3) integer-valued shifts.
    :param cell: (B, 3, 3) lattice vectors as rows in Å.
    :param batch: (N,) structure index of each atom.
    :param edge_index: (2, E) atom indices.
    :return: (E, 3) shifts in Å.
    """
    if edge_index.shape[1] == 0:
        return cell_shifts.new_zeros(0, 3) + 0.0 * cell.sum()
    cell_shifts = cell_shifts.to(cell.dtype)
    if cell.shape[0] == 1:
        return cell_shifts @ cell[0]
    edge_batch = batch[edge_index[0]]
    if bool((edge_batch[1:] >= edge_batch[:-1]).all()):
        # edges grouped by structure (as built by neighbor_list): one small matmul per structure
        counts = torch.bincount(edge_batch, minlength=cell.shape[0]).tolist()
        parts = torch.split(cell_shifts, counts)
        return torch.cat([part @ cell[s] for s, part in enumerate(parts)])
    return torch.einsum('ea,eab->eb', cell_shifts, cell[edge_batch])


def edge_vectors(positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, nl: NeighborList) -> torch.Tensor:
    """Pair vectors ``r_ij = positions[j] - positions[i] + cell_shifts @ cell`` for every edge.

    Differentiable in ``positions`` and ``cell``: apply a strain to both before calling this to get the virial.

    :param positions: (N, 3) positions in Å.
    :param cell: (B, 3, 3) lattice vectors as rows in Å.
    :param batch: (N,) structure index of each atom.
    :param nl: neighbour list from :func:`neighbor_list`.
    :return: (E, 3) pair vectors in Å.
    """
    i, j = nl.edge_index
    return positions[j] - positions[i] + cartesian_shifts(nl.cell_shifts, cell, batch, nl.edge_index)
