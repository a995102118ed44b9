"""Accuracy at equal data and epochs: LES (own host, MACE host), the short-range baseline, and mace-torch's own MACE.

Data (paths are arguments; defaults point at the SPICE polar dipeptides of ``../shared/external``): the first
``--n-train`` frames of ``--train`` train, the next ``--n-valid`` validate, the first ``--n-test`` frames of
``--test`` are the test set. Labels are read under ``--energy-key`` / ``--forces-key`` (SPICE: ``energy`` in the
calculator results, ``force`` arrays) and written, in memory order, to ``REF_energy`` / ``REF_forces`` files in the
work directory, which every model reads. Models:

- ``les_mpnn``: this project's LES on its own host; ``les_mace``: LES on the MACE host (``num_channels``, ``max_L`` 1,
  ``max_ell`` 2, correlation 3, 2 interactions); ``short_range``: the own host without the long range;
- ``mace``: ``mace_run_train`` (plain MACE of the same size, ``E0s average``, EMA), the peer.

Every model gets the same epochs, batch size, cutoff, dtype (float32) and torch threads. Printed: parameters,
seconds per epoch (training CPU time / epochs, validation included: with one thread it equals the wall time on an idle
machine and stays fair when other jobs share the cores; the wall time is in ``results.json``), test E RMSE (meV/atom)
and F RMSE (meV/Å), mean and spread (half the range) over ``--seeds``, and each model's ratios to the peer.

Usage::

    python benchmarks/model_accuracy.py [--n-train 300] [--epochs 20] [--seeds 0 1 2] [--models les_mpnn mace]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.io import load_model
from les_model.train.committee import train_committee
from les_model.train.metrics import ErrorAccumulator

#: ``../shared/external`` next to the repository (pass --train / --test when the data is elsewhere).
SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'external'
KEYS = {'energy': 'REF_energy', 'forces': 'REF_forces', 'stress': None, 'dipole': None, 'bec': None}
MODELS = ('les_mpnn', 'les_mace', 'short_range', 'mace')


def _label(value, name):
    if value is None:
        raise SystemExit(f'a frame has no {name!r} label; pass --energy-key / --forces-key')
    return np.asarray(value, dtype=float)


def prepare(args) -> dict[str, Path]:
    """Write train / valid / test files with labels under REF_energy / REF_forces; return their paths."""
    args.workdir.mkdir(parents=True, exist_ok=True)

    def relabel(frames):
        out = []
        for atoms in frames:
            results = atoms.calc.results if atoms.calc is not None else {}
            energy = atoms.info.get(args.energy_key, results.get(args.energy_key))
            forces = atoms.arrays.get(args.forces_key, results.get(args.forces_key))
            copy = ase.Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            copy.info['REF_energy'] = float(_label(energy, args.energy_key).reshape(-1)[0])
            copy.arrays['REF_forces'] = _label(forces, args.forces_key).reshape(len(atoms), 3)
            out.append(copy)
        return out

    pool = ase.io.read(args.train, f':{args.n_train + args.n_valid}')
    test = ase.io.read(args.test, f':{args.n_test}')
    paths = {}
    for name, frames in (('train', pool[: args.n_train]), ('valid', pool[args.n_train :]), ('test', test)):
        paths[name] = args.workdir / f'{name}.extxyz'
        ase.io.write(paths[name], relabel(frames), format='extxyz')
    return paths


def _errors(predict, path: Path) -> dict[str, float]:
    """RMSE of energy per atom (meV/atom) and forces (meV/Å) of ``predict(batch) -> prediction dict``."""
    data = StructureDataset.from_file(path, TrainConfig.from_dict({'train_file': 'x', 'keys': KEYS}).keys)
    acc = ErrorAccumulator()
    for batch in data.batches(8, None, torch.float32):
        acc.update(predict(batch), batch, 0.0)
    summary = acc.summary()
    return {'E': summary['energy_per_atom_rmse'], 'F': summary['forces_rmse']}


def run_les(name: str, seed: int, paths, args) -> dict[str, float]:
    model = {'cutoff': args.cutoff, 'n_features': args.channels, 'long_range': name != 'short_range'}
    if name == 'les_mace':
        model = {**model, 'backbone': 'mace', 'mace': {'max_L': 1, 'max_ell': 2, 'correlation': 3}}
    config = TrainConfig.from_dict(
        {
            'train_file': str(paths['train']),
            'valid_file': str(paths['valid']),
            'keys': KEYS,
            'model': model,
            'epochs': args.epochs,
            'batch_size': args.batch_size,
            'lr': args.lr,
            'seed': seed,
            'dtype': 'float32',
            'device': 'cpu',
            'progress': False,
        }
    )
    workdir = args.workdir / f'{name}_{seed}'
    start, cpu_start = time.monotonic(), time.process_time()
    train_committee(config, workdir, echo=False)
    seconds = (time.monotonic() - start) / args.epochs
    cpu_seconds = (time.process_time() - cpu_start) / args.epochs
    trained = load_model(workdir / 'model.pt', dtype=torch.float32)
    errors = _errors(lambda batch: trained(batch, compute_forces=True), paths['test'])
    params = sum(p.numel() for p in trained.parameters())
    return {**errors, 'params': params, 's_per_epoch': cpu_seconds, 'wall_s_per_epoch': seconds}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mace(seed: int, paths, args) -> dict[str, float]:
    workdir = args.workdir / f'mace_{seed}'
    command = [
        str(Path(sys.executable).with_name('mace_run_train')),
        '--name=mace',
        f'--seed={seed}',
        f'--work_dir={workdir}',
        f'--train_file={paths["train"]}',
        f'--valid_file={paths["valid"]}',
        '--energy_key=REF_energy',
        '--forces_key=REF_forces',
        '--E0s=average',
        '--model=MACE',
        f'--num_channels={args.channels}',
        '--max_L=1',
        '--max_ell=2',
        '--correlation=3',
        '--num_interactions=2',
        f'--r_max={args.cutoff}',
        f'--batch_size={args.batch_size}',
        f'--valid_batch_size={args.batch_size}',
        f'--max_num_epochs={args.epochs}',
        '--ema',
        '--ema_decay=0.99',
        '--device=cpu',
        '--default_dtype=float32',
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': str(args.threads)}
    start, cpu_start = time.monotonic(), _children_cpu_seconds()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = (time.monotonic() - start) / args.epochs
    cpu_seconds = (_children_cpu_seconds() - cpu_start) / args.epochs
    model_file = workdir / 'mace.model'
    if result.returncode != 0 or not model_file.is_file():
        raise SystemExit(f'mace_run_train failed ({result.returncode}):\n{result.stderr[-3000:]}')
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(model_file), device='cpu', default_dtype='float32')
    frames = ase.io.read(paths['test'], ':')
    e_err, f_err = [], []
    for atoms in frames:
        atoms.calc = calc
        e_err.append((atoms.get_potential_energy() - atoms.info['REF_energy']) / len(atoms))
        f_err.append((atoms.get_forces() - atoms.arrays['REF_forces']).ravel())
    params = sum(p.numel() for p in calc.models[0].parameters())
    rmse = lambda x: 1000.0 * float(np.sqrt(np.mean(np.square(np.concatenate(x) if x[0].ndim else x))))  # noqa: E731
    return {
        'E': rmse(e_err),
        'F': rmse(f_err),
        'params': params,
        's_per_epoch': cpu_seconds,
        'wall_s_per_epoch': seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train', type=Path, default=SHARED / 'les_fit/data-benchmark/spice-dipep-dipolar_train.xyz')
    parser.add_argument(
        '--test', type=Path, default=SHARED / 'cace-lr-fit/fit-dipeptides/data/spice-dipep-dipolar_test.xyz'
    )
    parser.add_argument('--energy-key', default='energy')
    parser.add_argument('--forces-key', default='force')
    parser.add_argument('--n-train', type=int, default=300)
    parser.add_argument('--n-valid', type=int, default=30)
    parser.add_argument('--n-test', type=int, default=50)
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=0.005)
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--models', nargs='+', choices=MODELS, default=list(MODELS))
    parser.add_argument('--workdir', type=Path, default=Path('benchmark_accuracy'))
    parser.add_argument(
        '--report',
        type=Path,
        nargs='+',
        metavar='WORKDIR',
        help='train nothing: print the table of the results.json files of these work directories together (seeds '
        'run as separate processes, for example)',
    )
    args = parser.parse_args()
    if args.report:
        results: dict[str, list[dict]] = {}
        for workdir in args.report:
            for name, runs in json.loads((workdir / 'results.json').read_text()).items():
                results.setdefault(name, []).extend(runs)
        print_table(results, f'{len(args.report)} result file(s): {", ".join(map(str, args.report))}')
        return
    torch.set_num_threads(args.threads)
    paths = prepare(args)
    results = {}
    # Seeds outermost: an interrupted run still has every model for the seeds it finished.
    for seed in args.seeds:
        for name in args.models:
            run = run_mace(seed, paths, args) if name == 'mace' else run_les(name, seed, paths, args)
            run['seed'] = seed
            results.setdefault(name, []).append(run)
            print(f'{name} seed {seed}: {json.dumps({k: round(v, 3) for k, v in run.items()})}', flush=True)
            (args.workdir / 'results.json').write_text(json.dumps(results, indent=1))
    print_table(results, f'{args.n_train} training frames, {args.epochs} epochs, batch {args.batch_size}')


def print_table(results: dict[str, list[dict]], title: str) -> None:
    """Print mean and spread (half the range) over the runs of each model, and the ratios to ``mace``."""

    def stat(name, key):
        values = np.array([r[key] for r in results[name]])
        return values.mean(), (values.max() - values.min()) / 2

    peer = 'mace' if 'mace' in results else None
    seeds = sorted({r.get('seed') for runs in results.values() for r in runs}, key=str)
    print(f'\n{title}; seeds {seeds}; runs per model: { ({name: len(runs) for name, runs in results.items()}) }')
    header = f'{"model":<12} {"params":>8} {"cpu s/ep":>9} {"test E RMSE meV/atom":>22} {"test F RMSE meV/Å":>20}'
    print(f'{header}  ratios to mace')
    for name in results:
        (e, de), (f, df), (s, _) = stat(name, 'E'), stat(name, 'F'), stat(name, 's_per_epoch')
        ratios = ''
        if peer and name != peer:
            e_peer, f_peer, s_peer = (stat(peer, key)[0] for key in ('E', 'F', 's_per_epoch'))
            ratios = f'E {e / e_peer:.2f}, F {f / f_peer:.2f}, time {s / s_peer:.2f}'
        params = results[name][0]['params']
        print(f'{name:<12} {params:>8} {s:>9.1f} {e:>15.2f} ± {de:<5.2f} {f:>13.1f} ± {df:<5.1f}  {ratios}')


if __name__ == '__main__':
    main()
