"""The charged-fragment check shared by the tests and ``benchmarks/charges.py``.

An ion (+-1 e) next to neutral polar diatomics (:func:`les_model.data.synthetic.ion_molecule_pairs`): trained with
ion-molecule distances 2.5-9 Å, tested at 5-10 Å, beyond the 4 Å cutoff, where only the long range sees the other
fragment; with one molecule and, for the transferability of the net-charge distribution, with two.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import torch

from les_model import _keys as K
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import ion_molecule_pairs
from les_model.nn.model import LesModel
from les_model.testing.models import fit_in_memory

__all__ = ['fragment_errors', 'fragment_test_sets', 'fragment_training_set', 'train_fragment_model']


def train_fragment_model(frames: Sequence[ase.Atoms], long_range: bool, epochs: int = 25) -> LesModel:
    """A small model (16 features, one interaction, 4 Å cutoff, float64) trained on ``frames`` (seed 0)."""
    options = {
        'epochs': epochs,
        'batch_size': 4,
        'lr': 0.005,
        'ema_decay': 0.9,
        'scheduler': 'none',
        'forces_weight': 10.0,
        'model': {
            'n_features': 16,
            'readout_hidden': 16,
            'charge_hidden': 16,
            'n_interactions': 1,
            'cutoff': 4.0,
            'long_range': long_range,
            'charge_embedding': False,
        },
    }
    trainer = fit_in_memory(frames, options)
    return trainer.model


def fragment_errors(model: LesModel, frames: Sequence[ase.Atoms], ion_z: int) -> tuple[float, float, torch.Tensor]:
    """Energy RMSE [eV] (after removing the mean offset), force RMSE [eV/Å] and the ion charges (e) on ``frames``."""
    batch = next(StructureDataset.from_atoms(frames).batches(len(frames), dtype=torch.float64))
    out = model(batch)
    energy = (out[K.ENERGY] - batch[K.ENERGY]).detach()
    energy = energy - energy.mean()  # a constant offset is not an error of the interaction
    forces = (out[K.FORCES] - batch[K.FORCES]).detach()
    ion_charge = out[K.CHARGES].detach()[batch[K.ATOMIC_NUMBERS] == ion_z]
    return float(energy.square().mean().sqrt()), float(forces.square().mean().sqrt()), ion_charge


def fragment_test_sets(ion: tuple[int, float]) -> dict[int, list[ase.Atoms]]:
    """Test frames at 5-10 Å with one and with two molecules, keyed by the number of molecules."""
    return {n: ion_molecule_pairs(30, (5.0, 10.0), ion=ion, n_molecules=n, seed=1 + n) for n in (1, 2)}


def fragment_training_set(ion: tuple[int, float]) -> list[ase.Atoms]:
    """40 training frames at 2.5-9 Å, one molecule."""
    return ion_molecule_pairs(40, (2.5, 9.0), ion=ion, seed=0)
