"""A fresh model set up from its training data: per-species E0, energy scale and average neighbour count.

The statistics are those mace-torch computes before training (``rms_forces_scaling``, ``avg_num_neighbors``): the
host's per-atom outputs are multiplied by the RMS of the training forces [eV/Å → eV], and the message sums are
divided by the mean number of neighbours within the cutoff, so that a fresh model starts near the data's scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch

from les_model import _keys as K
from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.data.neighborlist import neighbor_list
from les_model.data.reference import fit_reference_energies
from les_model.io import load_model
from les_model.nn.model import LesModel

__all__ = ['energy_scale', 'initialise_model', 'mean_neighbours']

#: Structures used for the statistics (a sample is enough; the full set can be large).
_MAX_STRUCTURES = 64


def mean_neighbours(dataset: StructureDataset, cutoff: float, max_structures: int = _MAX_STRUCTURES) -> float:
    """Mean number of neighbours within ``cutoff`` [Å] per atom over up to ``max_structures`` structures (>= 1)."""
    counts = []
    for s in dataset.samples[:max_structures]:
        pos = torch.as_tensor(s[K.POSITIONS])
        nl = neighbor_list(
            pos,
            torch.as_tensor(s[K.CELL])[None],
            torch.as_tensor(s[K.PBC])[None],
            torch.zeros(len(pos), dtype=torch.int64),
            cutoff,
        )
        counts.append(nl.edge_index.shape[1] / len(pos))
    return max(float(np.mean(counts)), 1.0) if counts else 1.0


def energy_scale(dataset: StructureDataset, e0: Mapping[int, float], max_structures: int = _MAX_STRUCTURES) -> float:
    """Energy scale [eV]: RMS of the force components, else the spread of the E0-corrected energy per atom, else 1."""
    samples = dataset.samples[:max_structures]
    forces = [s[K.FORCES] for s in samples if K.FORCES in s]
    residuals = [
        (float(s[K.ENERGY]) - sum(e0[int(z)] for z in s[K.ATOMIC_NUMBERS])) / len(s[K.ATOMIC_NUMBERS])
        for s in samples
        if K.ENERGY in s
    ]
    if forces:
        scale = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    elif len(residuals) > 1:
        scale = float(np.std(residuals))
    else:
        scale = 1.0
    return scale if np.isfinite(scale) and scale > 1e-6 else 1.0


def initialise_model(
    config: TrainConfig, train_set: StructureDataset, seed: int, log: Callable[[str], None] | None = None
) -> LesModel:
    """A fresh model (seeded) with E0 and scales from ``train_set``, or the warm-start model of ``init_model``.

    For the MACE host the average neighbour count is written into ``model.mace.avg_num_neighbors`` (unless set),
    so that a model file rebuilt from its configuration divides by the same number.

    :param log: receives the notices (E0 fit, statistics); without it, a degenerate E0 fit is a ``UserWarning``.
    :return: the model in float64 on the CPU; the trainer casts it.
    """
    if config.init_model:
        model = load_model(config.init_model, map_location='cpu', dtype=torch.float64)
        if model.config != config.model:
            warnings.warn(
                f'init_model {config.init_model}: its architecture is used; the `model` section is ignored',
                stacklevel=2,
            )
        missing = sorted(set(train_set.species) - set(model.species))
        if missing:
            raise ValueError(f'init_model {config.init_model} lacks species {missing} present in the training data')
        return model.train()
    species = config.model.species or train_set.species
    missing = sorted(set(train_set.species) - set(species))
    if missing:
        raise ValueError(f'model.species {list(species)} lacks species {missing} present in the training data')
    if config.reference_energies == 'least_squares':
        fit = fit_reference_energies(train_set, species)
        e0 = fit.energies
        if log is not None:
            log(('warning: ' if fit.degenerate else '') + fit.describe())
        elif fit.degenerate:
            warnings.warn(fit.describe(), stacklevel=2)
    else:
        e0 = dict.fromkeys(species, 0.0)
    neighbours = mean_neighbours(train_set, config.model.cutoff)
    model_config = config.model
    if model_config.backbone == 'mace' and 'avg_num_neighbors' not in model_config.mace:
        model_config = model_config.model_copy(update={'mace': {**model_config.mace, 'avg_num_neighbors': neighbours}})
    torch.manual_seed(seed)
    model = LesModel(model_config, species, e0).double()
    scale = energy_scale(train_set, e0)
    model.energy_scale.fill_(scale)
    if hasattr(model.host, 'inv_neighbors'):
        model.host.inv_neighbors.fill_(1.0 / neighbours)
    if log is not None:
        log(f'data statistics: energy scale {scale:.3g} eV, {neighbours:.3g} neighbours/atom within {model.cutoff} Å')
    return model
