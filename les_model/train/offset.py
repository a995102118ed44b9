"""Refit of the per-species reference energies E0 to the current model's residuals, once per epoch.

Why: forces do not see a uniform shift of the per-atom energy, so the force-driven updates of the network move the
energy offset at random, and the (small) energy term of the loss pulls it back only slowly. On a training set of
one composition (the water demo) this showed as training energy errors jumping 2-5x from epoch to epoch while the
spread of the errors around their mean stayed smooth. Least squares on the residuals, ``dE0 = A^+ r`` (``A`` the
composition matrix, ``r`` the energy residual per frame), removes the offset at every epoch; the minimum-norm
solution changes E0 only along the directions the compositions determine (see :mod:`les_model.data.reference`).
"""

from __future__ import annotations

import numpy as np
import torch

from les_model import _keys as K
from les_model.data.dataset import StructureDataset
from les_model.nn.model import LesModel
from les_model.train.distributed import Communicator

__all__ = ['refit_reference_energies']


@torch.no_grad()
def refit_reference_energies(
    model: LesModel,
    dataset: StructureDataset,
    batch_size: int,
    dtype: torch.dtype,
    device: torch.device,
    comm: Communicator | None = None,
) -> np.ndarray:
    """Add ``A^+ r`` to ``model.e0`` in place, with ``r`` the residuals of ``model`` on the energies of ``dataset``.

    :param model: the model (its current weights are used; ``model.e0`` (S,) is updated).
    :param dataset: training structures; those without an energy label are skipped.
    :param comm: data-parallel communicator: the ranks take turns over the batches and gather the residuals, so that
        every rank adds the same correction.
    :return: the correction dE0 (S,) [eV] that was added.
    """
    species = list(model.species)
    column = {z: c for c, z in enumerate(species)}
    world = comm.world_size if comm is not None else 1
    every = comm.part if world > 1 else None
    parts: list[tuple[np.ndarray, np.ndarray] | None] = []  # (composition rows, residuals) of each batch
    for batch in dataset.batches(batch_size, None, dtype, device, every=every):
        if K.ENERGY not in batch:
            parts.append(None)
            continue
        pred = model(batch, compute_forces=False)[K.ENERGY]
        mask = batch[K.MASK_OF[K.ENERGY]].cpu().numpy()
        numbers = batch[K.ATOMIC_NUMBERS].cpu().numpy()
        owner = batch[K.BATCH].cpu().numpy()
        counts = np.zeros((len(mask), len(species)))
        np.add.at(counts, (owner, [column[int(z)] for z in numbers]), 1.0)
        parts.append((counts[mask], (batch[K.ENERGY] - pred).double().cpu().numpy()[mask]))
    if world > 1:  # rank r holds batches r, r + world, ...: every rank puts them back in batch order
        gathered = comm.gather(parts)
        parts = [g[i] for i in range(max(map(len, gathered))) for g in gathered if i < len(g)]
    parts = [p for p in parts if p is not None]
    if not parts:
        return np.zeros(len(species))
    rows, residuals = [p[0] for p in parts], [p[1] for p in parts]
    a, r = np.concatenate(rows), np.concatenate(residuals)
    delta = np.linalg.lstsq(a, r, rcond=None)[0]
    if np.all(np.isfinite(delta)):
        model.e0.add_(torch.as_tensor(delta, dtype=model.e0.dtype, device=model.e0.device))
    return delta
