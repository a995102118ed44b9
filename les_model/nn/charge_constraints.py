"""Total-charge constraint for per-atom charges: a shift per structure, uniform or distributed by weights."""

import torch

__all__ = ['enforce_total_charge', 'shift_to_total_charge', 'structure_softmax', 'structure_softmax_unchecked']


def structure_softmax(logits: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Softmax of ``logits`` over the atoms of each structure.

    :param logits: (N,) per-atom logits.
    :param batch: (N,) int64 structure index of each atom.
    :param n_structures: B.
    :return: (N,) non-negative weights summing to 1 over each structure's atoms.
    """
    if logits.dim() != 1 or batch.shape != logits.shape:
        raise ValueError(
            f'logits and batch must both have shape (N,), got {tuple(logits.shape)} and {tuple(batch.shape)}'
        )
    return structure_softmax_unchecked(logits, batch, n_structures)


def structure_softmax_unchecked(logits: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """:func:`structure_softmax` without the shape checks (TorchScript-compatible)."""
    # Subtracting the per-structure maximum keeps exp() finite; it cancels in the ratio.
    peak = logits.new_full([n_structures], float('-inf')).scatter_reduce(0, batch, logits.detach(), reduce='amax')
    expo = torch.exp(logits - peak[batch])
    norm = torch.zeros(n_structures, dtype=logits.dtype, device=logits.device).index_add(0, batch, expo)
    return expo / norm[batch]


def enforce_total_charge(
    charges: torch.Tensor,
    batch: torch.Tensor,
    total_charge: torch.Tensor | None = None,
    n_structures: int | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Shift the charges of every structure so that they sum to its total charge.

    ``q_i <- q_i + w_i (Q_s - sum_{j in s} q_j)`` with ``w_i = 1 / n_s`` (uniform) or the given per-atom weights
    (each structure's weights summing to 1, e.g. from :func:`structure_softmax`), so that a net charge can sit on
    the atoms the weights pick out, for instance on an ion rather than on a neutral molecule next to it.
    Differentiable.

    :param charges: (N,) charges in e.
    :param batch: (N,) int64 structure index of each atom.
    :param total_charge: (B,) target total charge of each structure in e; None means neutral.
    :param n_structures: B; inferred from ``total_charge`` or ``batch`` when None.
    :param weights: (N,) distribution of the missing charge over each structure's atoms; None means uniform.
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
    if weights is not None and weights.shape != charges.shape:
        raise ValueError(f'weights must have the shape of charges {tuple(charges.shape)}, got {tuple(weights.shape)}')
    return shift_to_total_charge(charges, batch, total_charge, n_structures, weights)


def shift_to_total_charge(
    charges: torch.Tensor,
    batch: torch.Tensor,
    total_charge: torch.Tensor,
    n_structures: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The shift of :func:`enforce_total_charge` without its checks (TorchScript-compatible).

    :param charges: (N,) charges in e. :param batch: (N,) int64. :param total_charge: (B,) in e, dtype of charges.
    :param n_structures: B. :param weights: (N,) or None (uniform).
    :return: (N,) constrained charges in e.
    """
    current = torch.zeros(n_structures, dtype=charges.dtype, device=charges.device).index_add(0, batch, charges)
    missing = total_charge - current
    if weights is None:
        counts = torch.bincount(batch, minlength=n_structures).to(charges.dtype)
        return charges + (missing / counts.clamp(min=1))[batch]
    return charges + weights * missing[batch]
