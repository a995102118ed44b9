"""Total-charge constraint for per-atom charges: a uniform shift per structure."""

from __future__ import annotations

import torch

__all__ = ['enforce_total_charge']


def enforce_total_charge(
    charges: torch.Tensor,
    batch: torch.Tensor,
    total_charge: torch.Tensor | None = None,
    n_structures: int | None = None,
) -> torch.Tensor:
    """Shift the charges of every structure uniformly so that they sum to its total charge.

    ``q_i <- q_i + (Q_s - sum_{j in s} q_j) / n_s``; differentiable.

    :param charges: (N,) charges in e.
    :param batch: (N,) int64 structure index of each atom.
    :param total_charge: (B,) target total charge of each structure in e; None means neutral.
    :param n_structures: B; inferred from ``total_charge`` or ``batch`` when None.
    :return: (N,) constrained charges in e.
    """
    if charges.dim() != 1 or batch.shape != charges.shape:
        raise ValueError(
            f'charges and batch must both have shape (N,), got {tuple(charges.shape)} and {tuple(batch.shape)}'
        )
    if n_structures is None:
        if total_charge is not None:
            n_structures = total_charge.shape[0]
        else:
            n_structures = int(batch.max()) + 1 if batch.numel() else 0
    if total_charge is None:
        total_charge = charges.new_zeros(n_structures)
    total_charge = torch.as_tensor(total_charge, dtype=charges.dtype, device=charges.device)
    if total_charge.shape != (n_structures,):
        raise ValueError(f'total_charge must have shape ({n_structures},), got {tuple(total_charge.shape)}')
    if batch.numel() and int(batch.max()) >= n_structures:
        raise ValueError(f'batch refers to structure {int(batch.max())} but there are {n_structures} structures')
    counts = torch.bincount(batch, minlength=n_structures).to(charges.dtype)
    current = torch.zeros(n_structures, dtype=charges.dtype, device=charges.device).index_add(0, batch, charges)
    shift = (total_charge - current) / counts.clamp(min=1)
    return charges + shift[batch]
