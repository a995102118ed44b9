"""Physics helpers for dipoles and Born effective charges, one implementation each (numpy arrays or torch tensors).

* :func:`nearest_image`: a periodic cell's dipole is defined modulo the polarization quantum ``e R`` (lattice vectors
  ``R``, rows of the cell, Å); this folds a dipole, or a difference of dipoles, onto the branch whose lattice
  coordinates lie in ``[-1/2, 1/2)``;
* the acoustic sum rule ``sum_k Z*_k = Q I`` (``Q`` the total charge in e): :func:`born_charge_sums` (per structure),
  :func:`acoustic_sum_rule_violation` (its largest deviation), :func:`enforce_acoustic_sum_rule` (mean removed);
* :func:`divide_by_sqrt_eps_inf`: latent charges learned from energies and forces alone are screened charges; Born
  charges (or their errors) are divided by ``sqrt(eps_inf)`` (high-frequency dielectric constant, dimensionless) to
  estimate physical ones.

Born effective charges are ``(n_atoms, 3, 3)`` arrays ``Z[k, a, b] = d mu_a / d r_kb`` in e. torch is imported only
when a tensor is given, so the numpy callers (the CP2K labelling on compute nodes) stay light.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    'acoustic_sum_rule_violation',
    'born_charge_sums',
    'divide_by_sqrt_eps_inf',
    'enforce_acoustic_sum_rule',
    'lattice_coordinates',
    'nearest_image',
]


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith('torch')


def lattice_coordinates(vectors, cell):
    """Coordinates ``s`` with ``vectors = s @ cell``.

    :param vectors: (..., 3) Cartesian vectors in Å (or e·Å).
    :param cell: numpy: (3, 3); torch: (3, 3) or batched (..., 3, 3) like ``vectors``; lattice vectors as rows in Å.
    :return: array or tensor of the shape of ``vectors``.
    """
    if _is_tensor(vectors):
        import torch

        return torch.linalg.solve(cell.transpose(-1, -2), vectors.unsqueeze(-1)).squeeze(-1)
    vectors = np.asarray(vectors, dtype=float)
    flat = np.linalg.solve(np.asarray(cell, dtype=float).T, vectors.reshape(-1, 3).T).T
    return flat.reshape(vectors.shape)


def nearest_image(vectors, cell):
    """``vectors`` minus their nearest lattice vector: lattice coordinates folded into ``[-1/2, 1/2)``.

    Removes the polarization quantum from a Berry-phase dipole or from a difference of two dipoles (a label and a
    prediction, or two displaced structures), which puts both on one branch. Differentiable in torch (the removed
    lattice vector is piecewise constant).

    :param vectors: (..., 3) dipoles in e·Å.
    :param cell: lattice vectors as rows in Å, (3, 3) or (torch) batched (..., 3, 3).
    :return: folded vectors, same shape and type as ``vectors``.
    """
    frac = lattice_coordinates(vectors, cell)
    if _is_tensor(frac):
        import torch

        folded = frac - torch.floor(frac.detach() + 0.5)
        return (folded.unsqueeze(-2) @ cell).squeeze(-2)
    return (frac - np.floor(frac + 0.5)) @ np.asarray(cell, dtype=float)


def born_charge_sums(born_charges, batch, n_structures: int):
    """Per-structure sums ``sum_k Z*_k`` (torch).

    :param born_charges: (N, 3, 3) Born effective charges in e.
    :param batch: (N,) int64 structure index of each atom.
    :param n_structures: B.
    :return: (B, 3, 3) sums in e (``Q I`` for a structure of total charge ``Q`` that obeys the sum rule).
    """
    out = born_charges.new_zeros((n_structures, *born_charges.shape[1:]))
    return out.index_add(0, batch, born_charges)


def acoustic_sum_rule_violation(born_charges, total_charge: float = 0.0) -> float:
    """Largest entry (e) of ``|sum_k Z*_k - Q I|`` for one structure: zero for an exact calculation.

    :param born_charges: (n_atoms, 3, 3) Born effective charges in e (numpy or torch).
    :param total_charge: Q in e.
    """
    born = born_charges.detach().cpu().numpy() if _is_tensor(born_charges) else born_charges
    total = np.asarray(born, dtype=float).sum(axis=0) - float(total_charge) * np.eye(3)
    return float(np.abs(total).max())


def enforce_acoustic_sum_rule(born_charges, batch=None, n_structures: int = 1):
    """Subtract the per-structure mean so that ``sum_k Z*_k = 0`` in every structure.

    :param born_charges: (N, 3, 3) Born effective charges in e: a torch tensor (with ``batch``), or a numpy array of
        one structure (returned as numpy).
    :param batch: (N,) int64 structure index of each atom (default: one structure).
    :param n_structures: B.
    :return: corrected Born effective charges, same type and shape.
    """
    import torch

    if not _is_tensor(born_charges):
        born = torch.as_tensor(np.asarray(born_charges, dtype=float))
        return enforce_acoustic_sum_rule(born, None, 1).numpy()
    if batch is None:
        batch = torch.zeros(born_charges.shape[0], dtype=torch.int64, device=born_charges.device)
    counts = torch.bincount(batch, minlength=n_structures).to(born_charges.dtype).clamp(min=1)
    mean = born_charge_sums(born_charges, batch, n_structures) / counts[:, None, None]
    return born_charges - mean[batch]


def divide_by_sqrt_eps_inf(values, eps_inf):
    """``values / sqrt(eps_inf)``: Born charges of screened latent charges as estimates of the physical ones.

    :param values: Born charges (or their errors) in e: a torch tensor, a numpy array or a float.
    :param eps_inf: high-frequency dielectric constant (> 0), a number or (torch) a scalar tensor.
    :raises ValueError: if ``eps_inf`` is a number that is not > 0.
    """
    if not _is_tensor(eps_inf) and not (eps_inf is not None and float(eps_inf) > 0):
        raise ValueError(f'eps_inf must be > 0, got {eps_inf}')
    if _is_tensor(values):
        import torch

        return values / torch.sqrt(torch.as_tensor(eps_inf, dtype=values.dtype, device=values.device))
    return values / np.sqrt(eps_inf)
