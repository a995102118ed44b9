"""Stability of the learning curve on demo-like water: the largest epoch-to-epoch jump of the RMSE after epoch 10.

Data: periodic boxes of 8 H2O (24 atoms, the demo's seed structure), rattled by 0.03-0.07 Å and strained by up to
3 %, labelled with GFN1-xTB through tblite (``pip install aiida-les[xtb]``; the demo labels the same level of theory
with CP2K). The first ``--train`` frames train, the last 4 validate. Model and budget are the demo's (32 features,
2 layers, 5 Å cutoff, 60 epochs, batch 4, lr 0.005, float32, one thread). Each named setting is run and one line
per setting is printed: max jump (ratio of consecutive epochs, after epoch 10) and last RMSE, train and validation,
energy (meV/atom) and forces (meV/Å), and the wall time.

Usage::

    python benchmarks/learning_curve.py [--frames 28] [--train 24] [--epochs 60] [--data water.extxyz]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import water_like_box
from les_model.train.trainer import Trainer, initialise_model

#: name -> TrainConfig overrides; `before` is the trainer as it was (running errors, no warm-up, fixed E0).
SETTINGS = {
    'before': {'train_errors': 'running', 'warmup_epochs': 0, 'refit_reference_energies': False},
    'defaults': {},
    'defaults, E0 fixed': {'refit_reference_energies': False},
    'defaults, no warm-up': {'warmup_epochs': 0},
}
DEMO = {
    'batch_size': 4,
    'lr': 0.005,
    'dtype': 'float32',
    'progress': False,
    'model': {
        'cutoff': 5.0,
        'n_radial': 8,
        'n_features': 32,
        'n_interactions': 2,
        'readout_hidden': 32,
        'charge_hidden': 16,
    },
}


def water_frames(n: int, seed: int = 0) -> list:
    from tblite.ase import TBLite

    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = water_like_box(8, seed=k % 4)
        atoms.positions += rng.normal(scale=0.03 + 0.02 * (k % 3), size=atoms.positions.shape)
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3)) * (k % 2)
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.calc = TBLite(method='GFN1-xTB', verbosity=0)
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces(), 'stress': atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def max_jump(values: list[float], skip: int = 10) -> float:
    """Largest ratio between consecutive values after the first ``skip``."""
    tail = values[skip:]
    return max(max(a / b, b / a) for a, b in zip(tail, tail[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=28)
    parser.add_argument('--train', type=int, default=24)
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--data', type=Path, default=None, help='labelled extxyz to use (written there if missing)')
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.data and args.data.is_file():
        frames = ase.io.read(args.data, ':')
    else:
        frames = water_frames(args.frames)
        if args.data:
            ase.io.write(args.data, frames)
    train = StructureDataset.from_atoms(frames[: args.train])
    valid = StructureDataset.from_atoms(frames[-4:])
    print(f'{"setting":<22} {"train E jump":>12} {"valid E jump":>12} {"F jump":>7}  last train/valid E, F      s')
    for name, overrides in SETTINGS.items():
        config = TrainConfig.from_dict({'train_file': 'x', 'epochs': args.epochs, **DEMO, **overrides})
        start = time.monotonic()
        model = initialise_model(config, train, 0)
        trainer = Trainer(config, model, train, valid, torch.device('cpu'), torch.float32, 0)
        trainer.fit()

        def curve(split, key, trainer=trainer):
            return [e[split][key] for e in trainer.history]

        e_train, e_valid = curve('train', 'energy_per_atom_rmse'), curve('valid', 'energy_per_atom_rmse')
        f_train, f_valid = curve('train', 'forces_rmse'), curve('valid', 'forces_rmse')
        print(
            f'{name:<22} {max_jump(e_train):>12.2f} {max_jump(e_valid):>12.2f} {max_jump(f_train):>7.2f}  '
            f'{e_train[-1]:.1f}/{e_valid[-1]:.1f} meV/atom, {f_train[-1]:.0f}/{f_valid[-1]:.0f} meV/Å  '
            f'{time.monotonic() - start:.0f}',
            flush=True,
        )


if __name__ == '__main__':
    main()
