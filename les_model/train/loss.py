"""Weighted training loss: mean-squared errors of energy per atom, forces, stress, dipole and Born charges."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from les_model import _keys as K
from les_model.electrostatics.polarization import nearest_image

__all__ = ['LossWeights', 'dipole_difference', 'squared_error_sums', 'weighted_loss']


class LossWeights(dict):
    """Mapping label key -> weight (see :class:`~les_model.config.TrainConfig`); zero weights are skipped."""

    @classmethod
    def from_config(cls, config) -> LossWeights:
        """Read ``energy_weight``, ``forces_weight``, ... from a :class:`~les_model.config.TrainConfig`."""
        return cls(
            {
                K.ENERGY: config.energy_weight,
                K.FORCES: config.forces_weight,
                K.STRESS: config.stress_weight,
                K.DIPOLE: config.dipole_weight,
                K.BEC: config.bec_weight,
            }
        )

    @property
    def needs_stress(self) -> bool:
        """Whether the loss has a stress term (the model must compute the stress)."""
        return self.get(K.STRESS, 0.0) > 0

    @property
    def needs_bec(self) -> bool:
        """Whether the loss has a Born-charge term (the model must compute Born charges)."""
        return self.get(K.BEC, 0.0) > 0


def dipole_difference(pred: torch.Tensor, label: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """``pred - label`` (B, 3) in e·Å; for 3D-periodic structures reduced to the nearest polarization quantum.

    A periodic cell's dipole (polarization times volume) is defined modulo ``e R`` for lattice vectors ``R`` (rows of
    ``cell`` (B, 3, 3), Å), and a label and a prediction may sit on different branches; the difference is taken to
    the nearest lattice image so that the loss does not jump at the branch cut. Other structures keep the plain
    difference.
    """
    diff = pred - label
    periodic = pbc.all(dim=1)
    if not bool(periodic.any()):
        return diff
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand_as(cell)
    safe_cell = torch.where(periodic[:, None, None], cell, eye)
    return torch.where(periodic[:, None], nearest_image(diff, safe_cell), diff)


def _residuals(
    pred: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> dict[str, torch.Tensor]:
    """Label key -> the errors ``pred - label`` (rows, columns) of the labelled rows, for every weighted label."""
    n_atoms = data[K.N_ATOMS].to(pred[K.ENERGY].dtype)
    batch = data[K.BATCH]
    out: dict[str, torch.Tensor] = {}
    for key, weight in weights.items():
        if weight <= 0 or key not in data or key not in pred:
            continue
        mask = data[K.MASK_OF[key]]
        if key == K.ENERGY:
            diff = (pred[key] - data[key]) / n_atoms
        elif key == K.DIPOLE:
            diff = dipole_difference(pred[key], data[key], data[K.CELL], data[K.PBC])
        elif key in (K.FORCES, K.BEC):
            diff = (pred[key] - data[key]).reshape(pred[key].shape[0], -1)
            mask = mask[batch]
        else:
            diff = (pred[key] - data[key]).reshape(pred[key].shape[0], -1)
        out[key] = diff[mask]
    return out


def weighted_loss(
    pred: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of weighted mean-squared errors over the labels present in ``data``.

    Units of the terms: energy per atom eV^2, forces (eV/Å)^2, stress (eV/Å^3)^2, dipole (e Å)^2, BEC e^2.

    :param pred: model outputs (``energy (B,)``, ``forces (N,3)``, ``stress (B,3,3)``, ``dipole (B,3)``,
        ``bec (N,3,3)``).
    :param data: batch with labels and ``*_mask (B,)`` entries.
    :param weights: label key -> weight.
    :return: the total loss (scalar) and the unweighted term of each label used.
    """
    terms = {
        key: diff.square().mean() if diff.numel() else diff.new_zeros(())
        for key, diff in _residuals(pred, data, weights).items()
    }
    if not terms:
        raise ValueError(
            f'no label with a positive weight is present; weights {dict(weights)}, batch keys {list(data)}'
        )
    total = sum(weights[k] * v for k, v in terms.items())
    return total, terms


def squared_error_sums(
    pred: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> dict[str, tuple[torch.Tensor, int]]:
    """Label key -> (sum of squared errors (scalar), number of error elements) for one shard of a batch.

    With the element counts summed over the shards of a global batch (``N_k``), ``sum_k w_k S_k / N_k`` summed over
    the shards is :func:`weighted_loss` of the whole batch: the data-parallel loss
    (:mod:`les_model.train.distributed`).
    """
    return {key: (diff.square().sum(), diff.numel()) for key, diff in _residuals(pred, data, weights).items()}
