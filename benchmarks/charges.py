r"""Charges that mean something: sign agreement across seeds, raw dipole and Born-charge R^2, charged fragments.

Trains LES models on **energies and forces only** (one per seed) and compares their charge-derived predictions with
DFT dipoles and Born effective charges that the models never saw. "Raw" means as predicted: no sign flip, no scale
fitted; the best-scale figures are printed beside them for reference. The sign convention of
:mod:`les_model.nn.charge_sign` is what should make the raw numbers meaningful.

Data: extxyz files given as arguments, preprocessed in memory (formats vary: forces under ``force`` or ``forces``,
a per-frame dipole stored 1x3 or 3, Born charges as 9 per-atom columns ``bec``, energies in ``atoms.info`` or the
calculator). For example the SPICE polar dipeptides (train) and the SPICE Born-charge subsets (test)::

    python benchmarks/charges.py \
        --train ../shared/external/les_fit/data-benchmark/spice-dipep-dipolar_train.xyz \
        --test ../shared/external/les_fit/data-spice-test-bec/dipeptides.xyz \
               ../shared/external/les_fit/data-benchmark/spice-dipep-dipolar_val.xyz \
        --n-train 300 --epochs 10 --seeds 0 1 2

Born charges: ``Z[i, a, b] = d mu_a / d r_ib``; the files' 9 columns are read row-major. R^2 of the transposed
reading is printed too, in case a file stores the other convention.

The charged-fragment check (:func:`les_model.data.synthetic.ion_molecule_pairs`: point-charge ion +-1 e next to a
neutral polar diatomic, exact Coulomb + core) needs no files: the charge on the ion and the LES vs short-range force
error beyond the 4 Å cutoff.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from les_model import _keys as K
from les_model.data.dataset import StructureDataset
from les_model.testing.charged_fragment import (
    fragment_errors,
    fragment_test_sets,
    fragment_training_set,
    train_fragment_model,
)
from les_model.testing.models import fit_in_memory
from les_model.train.metrics import ErrorAccumulator


def _first(mapping, names):
    for name in names:
        if name in mapping and mapping[name] is not None:
            return np.asarray(mapping[name], dtype=float)
    return None


def normalise_frame(atoms: ase.Atoms) -> ase.Atoms:
    """One frame with ``energy``/``forces`` on a calculator, ``info['dipole']`` (3,) and ``arrays['bec']`` (n, 9).

    Accepts forces under ``force`` or ``forces`` (arrays or calculator), a dipole of shape (3,) or (1, 3), energies
    in ``info`` or the calculator, and keeps ``total_charge``.
    """
    results = dict(getattr(atoms.calc, 'results', {}) or {})
    energy = _first(atoms.info, ['energy']) if 'energy' in atoms.info else _first(results, ['energy'])
    forces = _first(atoms.arrays, ['forces', 'force'])
    if forces is None:
        forces = _first(results, ['forces', 'force'])
    dipole = _first(atoms.info, ['dipole'])
    if dipole is None:
        dipole = _first(results, ['dipole'])
    bec = _first(atoms.arrays, ['bec'])
    clean = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    clean.info['total_charge'] = float(atoms.info.get('total_charge', 0.0))
    if energy is None or forces is None:
        raise ValueError(
            f'a frame lacks energy or forces; it has info {sorted(atoms.info)} arrays {sorted(atoms.arrays)}'
        )
    clean.calc = SinglePointCalculator(clean, energy=float(np.reshape(energy, -1)[0]), forces=forces.reshape(-1, 3))
    if dipole is not None:
        clean.info['dipole'] = dipole.reshape(3)
    if bec is not None:
        clean.arrays['bec'] = bec.reshape(len(clean), 9)
    return clean


def read_frames(path: str | Path, limit: int | None = None) -> list[ase.Atoms]:
    """Read and normalise up to ``limit`` frames of ``path``."""
    frames = ase.io.read(path, index=':' if limit is None else f':{limit}')
    return [normalise_frame(atoms) for atoms in frames]


def train_energy_force_model(frames, seed: int, args) -> torch.nn.Module:
    """An LES model trained on energies and forces only (dipole and BEC weights 0)."""
    options = {
        'epochs': args.epochs,
        'batch_size': args.batch_size,
        'lr': args.lr,
        'dtype': 'float32',
        'progress': False,
        'model': {'n_features': args.features, 'cutoff': args.cutoff, 'n_interactions': args.interactions},
    }
    trainer = fit_in_memory(frames, options, seed, torch.float32)
    return trainer.model.eval()


def response_metrics(model, frames, batch_size: int = 4) -> dict[str, float]:
    """Dipole and BEC R^2 raw / after the best scale (:class:`ErrorAccumulator`), the transposed-BEC R^2, and the
    mean charge per element (e).
    """
    acc, transposed = ErrorAccumulator(), ErrorAccumulator()
    charges: dict[int, list[float]] = {}
    data = StructureDataset.from_atoms(frames)
    for batch in data.batches(batch_size, dtype=torch.float32):
        wants_bec = bool(batch.get(K.BEC_MASK, torch.zeros(1, dtype=torch.bool)).any())
        out = model(batch, compute_forces=True, compute_bec=wants_bec)
        pred = {k: v.detach() for k, v in out.items()}
        acc.update(pred, batch, 0.0)
        if wants_bec:
            swapped = dict(pred)
            swapped[K.BEC] = pred[K.BEC].transpose(1, 2)
            transposed.update(swapped, batch, 0.0)
        for z, q in zip(batch[K.ATOMIC_NUMBERS].tolist(), pred[K.CHARGES].tolist(), strict=True):
            charges.setdefault(z, []).append(q)
    out = {k: v for k, v in acc.summary().items() if k.startswith(('dipole', 'bec', 'forces_rmse'))}
    if 'bec_r2' in transposed.summary():
        out['bec_r2_transposed'] = transposed.summary()['bec_r2']
    out['mean_charge'] = {chemical_symbols[z]: round(float(np.mean(v)), 3) for z, v in sorted(charges.items())}
    return out


def charged_fragment() -> list[dict]:
    """LES vs short range on an ion + neutral polar molecule, total charge +-1, tested beyond the cutoff."""
    rows = []
    for ion in ((11, 1.0), (17, -1.0)):
        train = fragment_training_set(ion)
        models = {long_range: train_fragment_model(train, long_range) for long_range in (True, False)}
        for n_molecules, test in fragment_test_sets(ion).items():
            _, f_les, q_ion = fragment_errors(models[True], test, ion[0])
            _, f_short, _ = fragment_errors(models[False], test, ion[0])
            rows.append(
                {
                    'ion': f'Z={ion[0]} q={ion[1]:+.0f}',
                    'molecules': n_molecules,
                    'q_ion_les': float(q_ion.mean()),
                    'forces_rmse_les_meV_per_A': 1000 * f_les,
                    'forces_rmse_short_meV_per_A': 1000 * f_short,
                }
            )
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--train', type=Path, help='extxyz with energies and forces (dipoles/BECs are not used)')
    parser.add_argument('--test', type=Path, nargs='*', default=[], help='extxyz files with dipoles and/or BECs')
    parser.add_argument('--n-train', type=int, default=300, help='training frames taken from the start of --train')
    parser.add_argument('--n-test', type=int, default=100, help='frames per test file')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--features', type=int, default=32)
    parser.add_argument('--interactions', type=int, default=2)
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--skip-fragment', action='store_true', help='skip the charged-fragment check')
    parser.add_argument('--output', type=Path, help='write all results as JSON here')
    return parser


def _fmt(value) -> str:
    return f'{value:7.3f}' if isinstance(value, float) else f'{"-":>7}'


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict = {'settings': {k: str(v) for k, v in vars(args).items()}, 'seeds': [], 'fragment': []}
    if args.train is not None:
        train = read_frames(args.train, args.n_train)
        species = {int(z) for atoms in train for z in atoms.numbers}
        tests = {}
        for path in args.test:
            frames = read_frames(path, args.n_test)
            tests[path.name] = [a for a in frames if set(a.numbers.tolist()) <= species]
            if len(tests[path.name]) < len(frames):
                print(f'{path.name}: {len(frames) - len(tests[path.name])} of {len(frames)} frames left out '
                      f'(elements not in the training set {sorted(species)})')  # fmt: skip
        print(
            f'training on {len(train)} frames of {args.train.name} (energies and forces only), {args.epochs} epochs, '
            f'{args.features} features, cutoff {args.cutoff} Å, float32, {args.threads} thread(s)'
        )
        print(f'{"seed":>4} {"test file":<32} {"dip R2":>7} {"dip R2*":>7} {"dip s":>7} {"BEC R2":>7} '
              f'{"BEC R2*":>7} {"BEC s":>7} {"BEC R2T":>7}  mean q per element')  # fmt: skip
        for seed in args.seeds:
            start = time.perf_counter()
            model = train_energy_force_model(train, seed, args)
            row = {'seed': seed, 'train_seconds': time.perf_counter() - start, 'charge_sign': float(model.charge_sign)}
            for name, frames in tests.items():
                metrics = response_metrics(model, frames)
                row[name] = metrics
                columns = ('dipole_r2', 'dipole_r2_scaled', 'dipole_scale', 'bec_r2', 'bec_r2_scaled', 'bec_scale')
                values = ' '.join(_fmt(metrics.get(key)) for key in (*columns, 'bec_r2_transposed'))
                print(f'{seed:>4} {name[:32]:<32} {values}  {metrics["mean_charge"]}', flush=True)
            results['seeds'].append(row)
        signs = {
            name: [np.sign(row[name].get('dipole_scale', row[name].get('bec_scale', 0.0))) for row in results['seeds']]
            for name in tests
        }
        for name, values in signs.items():
            agree = len(set(values)) == 1
            print(
                f'sign agreement across seeds on {name}: {"yes" if agree else "NO"} (signs of the best scale {values})'
            )
        print('R2 = raw (no flip, no scale); R2* and s = after the best global scale s; R2T = BEC read transposed')
    if not args.skip_fragment:
        print('charged fragment (ion + neutral polar diatomic, total charge +-1; tested at 5-10 Å, cutoff 4 Å):')
        for row in charged_fragment():
            results['fragment'].append(row)
            print(
                f'  {row["ion"]:<12} molecules {row["molecules"]}: q(ion) {row["q_ion_les"]:+.3f} e, force RMSE '
                f'LES {row["forces_rmse_les_meV_per_A"]:.1f} vs short range {row["forces_rmse_short_meV_per_A"]:.1f} '
                'meV/Å'
            )
    if args.output:
        args.output.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == '__main__':
    sys.exit(main())
