"""Throughput of the LES model on CPU (or GPU): training steps/s and MD steps/s, long range on vs off.

Systems: water-like periodic boxes (random H2O orientations at liquid density, 192 and 1,536 atoms by default).
A *training step* is forward + forces (create_graph) + backward + AdamW step on one structure with energy and
force labels; an *MD step* is one velocity-Verlet step through :class:`~les_model.calculator.LesCalculator`
(energy + forces). Labels are random (speed only). Prints a table and the LES overhead.

Usage::

    python benchmarks/model.py [--sizes 192 1536] [--device cpu] [--threads 2] [--repeats 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from les_model.config import ModelConfig, TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import water_like_box
from les_model.train.trainer import Trainer, initialise_model


def _labelled_box(n_atoms: int, seed: int = 0):
    atoms = water_like_box(n_atoms // 3, seed=seed)
    rng = np.random.default_rng(seed)
    atoms.calc = SinglePointCalculator(atoms, energy=-10.0 * len(atoms), forces=rng.normal(size=(len(atoms), 3)))
    return atoms


def _model_options(long_range: bool, args) -> dict:
    return {
        'n_features': args.features,
        'n_interactions': args.interactions,
        'cutoff': args.cutoff,
        'long_range': long_range,
    }


def training_step(n_atoms: int, long_range: bool, args, device):
    """Return a callable doing one training step on one ``n_atoms`` structure."""
    config = TrainConfig.from_dict(
        {
            'train_file': 'benchmark',
            'batch_size': 1,
            'valid_fraction': 0.0,
            'ema_decay': 0.99,
            'dtype': 'float32',
            'progress': False,
            'model': _model_options(long_range, args),
        }
    )
    data = StructureDataset.from_atoms([_labelled_box(n_atoms)])
    trainer = Trainer(config, initialise_model(config, data, 0), data, StructureDataset([]), device, torch.float32, 0)
    batch = next(data.batches(1, dtype=torch.float32, device=device))
    return lambda: trainer._train_step(batch)


def md_step(n_atoms: int, long_range: bool, args, device):
    """Return a callable doing one velocity-Verlet step (0.5 fs) of an ``n_atoms`` box."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from les_model.calculator import LesCalculator
    from les_model.cli.md import thermalize
    from les_model.nn.model import LesModel

    atoms = water_like_box(n_atoms // 3)
    torch.manual_seed(0)
    model = LesModel(ModelConfig(**_model_options(long_range, args)), species=[1, 8])
    atoms.calc = LesCalculator(model, device=str(device), dtype=args.md_dtype)
    thermalize(atoms, 300.0, seed=0)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    return lambda: dyn.run(1)


def steps_per_second(step, repeats: int, device) -> float:
    """Steps per second of ``step`` over ``repeats`` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return repeats / (time.perf_counter() - start)


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[192, 1536])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--repeats', type=int, default=3, help='steps per timing round')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds; the best is reported')
    parser.add_argument('--features', type=int, default=64)
    parser.add_argument('--interactions', type=int, default=2)
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--md-dtype', default='float64', choices=['float32', 'float64'])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f'device={device} threads={args.threads} features={args.features} interactions={args.interactions} '
        f'cutoff={args.cutoff} Å, LES sigma=1 Å dl=2 Å, train float32 batch 1, MD {args.md_dtype} velocity Verlet, '
        f'best of {args.rounds} rounds x {args.repeats} steps'
    )
    header = f'{"atoms":>6} {"long_range":>10} {"train steps/s":>14} {"MD steps/s":>11}'
    print(header)
    print('-' * len(header))
    rows = {}
    for n in args.sizes:
        steps = {}
        for long_range in (False, True):
            steps[long_range] = (training_step(n, long_range, args, device), md_step(n, long_range, args, device))
            for step in steps[long_range]:
                step()  # warm-up
        best = {lr: [0.0, 0.0] for lr in steps}
        for _ in range(args.rounds):  # interleave the variants; keep the best round (least disturbed)
            for long_range, pair in steps.items():
                for k, step in enumerate(pair):
                    best[long_range][k] = max(best[long_range][k], steps_per_second(step, args.repeats, device))
        for long_range in (False, True):
            train, md = rows[n, long_range] = tuple(best[long_range])
            print(f'{n:>6} {str(long_range):>10} {train:>14.2f} {md:>11.2f}')
    print('LES overhead (time with LES / time without - 1):')
    for n in args.sizes:
        (t0, m0), (t1, m1) = rows[n, False], rows[n, True]
        print(f'  {n} atoms: training {100 * (t0 / t1 - 1):+.0f} %, MD {100 * (m0 / m1 - 1):+.0f} %')


if __name__ == '__main__':
    main()
