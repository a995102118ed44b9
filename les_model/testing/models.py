"""Model settings shared by tests: a tiny architecture that trains in seconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ase
import torch

__all__ = ['TINY_MODEL', 'fit_in_memory']

#: ``model`` section of a tiny LES model (8 features, one interaction, 3.5 Å cutoff): fast, not accurate.
TINY_MODEL = {
    'n_features': 8,
    'n_radial': 4,
    'readout_hidden': 8,
    'charge_hidden': 8,
    'n_interactions': 1,
    'cutoff': 3.5,
}


def fit_in_memory(
    frames: Sequence[ase.Atoms], options: Mapping[str, Any], seed: int = 0, dtype: torch.dtype = torch.float64
):
    """Train one model on ``frames`` in this process (no validation split, CPU) and return the fitted Trainer.

    :param frames: labelled structures.
    :param options: :class:`~les_model.config.TrainConfig` entries (``train_file``, ``valid_fraction`` and ``seed``
        are set here).
    :param seed: initialisation and batch-order seed.
    :param dtype: float32 or float64.
    """
    from les_model.config import TrainConfig
    from les_model.data.dataset import StructureDataset
    from les_model.train.trainer import Trainer, initialise_model

    data = StructureDataset.from_atoms(frames)
    config = TrainConfig.from_dict({**options, 'train_file': 'in-memory', 'valid_fraction': 0.0, 'seed': seed})
    model = initialise_model(config, data, seed)
    trainer = Trainer(config, model, data, StructureDataset([]), torch.device('cpu'), dtype, seed)
    trainer.fit()
    return trainer
