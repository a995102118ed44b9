"""Input validation shared by the electrostatics modules (shapes, dtypes, devices, cells, finite values).

Every check raises :class:`ValueError` or :class:`TypeError` with a message naming the expected and the actual value.
"""

from __future__ import annotations

import torch

#: Smallest pair distance (Å) accepted by the point-charge Coulomb sums, which diverge at r = 0.
MIN_DISTANCE: float = 0.01

__all__ = [
    'MIN_DISTANCE',
    'NonFiniteError',
    'check_batch',
    'check_cell',
    'check_charges_shape',
    'check_finite',
    'check_min_distance',
    'check_pbc',
    'validate_inputs',
]


def _check_float(name: str, tensor: torch.Tensor, dtype: torch.dtype, device: torch.device) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(tensor).__name__}')
    if tensor.dtype != dtype:
        raise TypeError(f'{name} must have dtype {dtype} (same as positions), got {tensor.dtype}')
    if tensor.device != device:
        raise ValueError(f'{name} must be on device {device} (same as positions), got {tensor.device}')


class NonFiniteError(ValueError):
    """A tensor holds NaN or infinite entries (a model that diverged in training raises this from its inputs)."""


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise if ``tensor`` has NaN or infinite entries.

    :param name: name used in the error message.
    :param tensor: any floating tensor.
    """
    if tensor.numel() and not bool(torch.isfinite(tensor.detach()).all()):
        n_bad = int((~torch.isfinite(tensor.detach())).sum())
        raise NonFiniteError(f'{name} must be finite everywhere, found {n_bad} non-finite entries')


def check_batch(batch: torch.Tensor, n_atoms: int, n_structures: int | None = None) -> int:
    """Check a structure-index vector and return the number of structures.

    :param batch: (N,) int64 structure index of each atom, sorted ascending, starting at 0.
    :param n_atoms: expected length N.
    :param n_structures: expected number of structures B, or None to infer ``batch.max() + 1``.
    :return: the number of structures B.
    """
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f'batch must be a torch.Tensor, got {type(batch).__name__}')
    if batch.dtype != torch.int64:
        raise TypeError(f'batch must have dtype torch.int64, got {batch.dtype}')
    if batch.shape != (n_atoms,):
        raise ValueError(f'batch must have shape ({n_atoms},), got {tuple(batch.shape)}')
    if n_atoms == 0:
        return 0 if n_structures is None else int(n_structures)
    if bool((batch[1:] < batch[:-1]).any()):
        raise ValueError('batch must be sorted in ascending order (atoms of one structure contiguous)')
    if int(batch[0]) < 0:
        raise ValueError(f'batch entries must be >= 0, got minimum {int(batch[0])}')
    inferred = int(batch[-1]) + 1
    if n_structures is None:
        return inferred
    if inferred > n_structures:
        raise ValueError(f'batch refers to structure {inferred - 1} but n_structures is {n_structures}')
    return int(n_structures)


def check_cell(cell: torch.Tensor, pbc: torch.Tensor, min_volume: float = 1e-6) -> None:
    """Check that every (partly) periodic structure has a non-singular cell.

    :param cell: (B, 3, 3) lattice vectors as rows, in Å.
    :param pbc: (B, 3) bool periodicity flags.
    :param min_volume: smallest accepted ``|det(cell)|`` in Å^3 for structures with any periodic direction.
    """
    periodic = pbc.any(dim=1)
    if bool(periodic.any()):
        volume = torch.linalg.det(cell.detach()[periodic]).abs()
        bad = torch.nonzero(volume < min_volume).flatten()
        if bad.numel():
            idx = int(torch.nonzero(periodic).flatten()[bad[0]])
            raise ValueError(
                f'cell of periodic structure {idx} is singular: expected |det(cell)| >= {min_volume} Å^3, '
                f'got {float(volume[bad[0]]):.3g}'
            )


def check_pbc(pbc: torch.Tensor, n_structures: int, device: torch.device, allow_mixed: bool = True) -> None:
    """Check the periodicity flags.

    :param pbc: (B, 3) bool.
    :param n_structures: expected B.
    :param device: expected device.
    :param allow_mixed: accept slab-like structures (some but not all directions periodic).
    """
    if not isinstance(pbc, torch.Tensor):
        raise TypeError(f'pbc must be a torch.Tensor, got {type(pbc).__name__}')
    if pbc.dtype != torch.bool:
        raise TypeError(f'pbc must have dtype torch.bool, got {pbc.dtype}')
    if pbc.shape != (n_structures, 3):
        raise ValueError(f'pbc must have shape ({n_structures}, 3), got {tuple(pbc.shape)}')
    if pbc.device != device:
        raise ValueError(f'pbc must be on device {device} (same as positions), got {pbc.device}')
    if not allow_mixed:
        mixed = pbc.any(dim=1) & ~pbc.all(dim=1)
        if bool(mixed.any()):
            idx = int(torch.nonzero(mixed).flatten()[0])
            raise ValueError(
                f'structure {idx} has pbc {pbc[idx].tolist()}: expected all True or all False for this method'
            )


def check_charges_shape(positions: torch.Tensor, charges: torch.Tensor) -> None:
    """Raise ValueError unless ``charges`` has shape (n,) for ``positions`` (n, 3).

    A (n, 1) column would broadcast against (n,) pair terms into an (n, n) matrix and give a silently wrong energy.
    """
    n_atoms = positions.shape[0]
    if tuple(charges.shape) != (n_atoms,):
        raise ValueError(f'charges must have shape ({n_atoms},), got {tuple(charges.shape)}')


def check_min_distance(distances: torch.Tensor, min_distance: float) -> None:
    """Raise if any pair distance is below ``min_distance`` (overlapping atoms).

    :param distances: (E,) pair distances in Å.
    :param min_distance: threshold in Å.
    """
    if distances.numel():
        smallest = float(distances.detach().min())
        if smallest < min_distance:
            raise ValueError(
                f'atoms overlap: expected all pair distances >= {min_distance} Å, got a pair at {smallest:.3g} Å'
            )


def validate_inputs(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    batch: torch.Tensor,
    n_structures: int | None = None,
    charges: torch.Tensor | None = None,
    allow_mixed_pbc: bool = True,
) -> int:
    """Validate the batch convention used by all electrostatics modules and return the number of structures.

    :param positions: (N, 3) float32/float64 Cartesian positions in Å.
    :param cell: (B, 3, 3) lattice vectors as rows in Å (may be zero for non-periodic structures).
    :param pbc: (B, 3) bool periodicity flags.
    :param batch: (N,) int64 sorted structure index of each atom.
    :param n_structures: B, or None to infer it from ``batch`` (or ``cell`` when no atoms are given).
    :param charges: optional (N,) charges in e, same dtype and device as ``positions``.
    :param allow_mixed_pbc: accept slab-like pbc such as (True, True, False).
    :return: the number of structures B.
    """
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f'positions must be a torch.Tensor, got {type(positions).__name__}')
    if positions.dtype not in (torch.float32, torch.float64):
        raise TypeError(f'positions must have dtype torch.float32 or torch.float64, got {positions.dtype}')
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError(f'positions must have shape (N, 3), got {tuple(positions.shape)}')
    n_atoms = positions.shape[0]
    dtype, device = positions.dtype, positions.device
    _check_float('cell', cell, dtype, device)
    if n_structures is None and n_atoms == 0:
        n_structures = cell.shape[0] if cell.dim() == 3 else None
    if batch.device != device:
        raise ValueError(f'batch must be on device {device} (same as positions), got {batch.device}')
    n_structures = check_batch(batch, n_atoms, n_structures)
    if cell.shape != (n_structures, 3, 3):
        raise ValueError(f'cell must have shape ({n_structures}, 3, 3), got {tuple(cell.shape)}')
    check_pbc(pbc, n_structures, device, allow_mixed=allow_mixed_pbc)
    check_finite('positions', positions)
    check_finite('cell', cell)
    if charges is not None:
        _check_float('charges', charges, dtype, device)
        check_charges_shape(positions, charges)
        check_finite('charges', charges)
    check_cell(cell, pbc)
    return n_structures
