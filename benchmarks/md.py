"""MD throughput of an LES model: native eager calculator vs the exported TorchScript (metatomic) model.

Systems: water-like periodic boxes (:func:`~les_model.data.synthetic.water_like_box`, 192 and 1,536 atoms by
default). One MD step is one velocity-Verlet step (0.5 fs) in ASE with

- ``eager``: :class:`~les_model.calculator.LesCalculator` (Python model, vesin neighbour list every call);
- ``ts-native``: ``LesCalculator(scripted=True)`` (what ``les-md`` runs with ``scripted: true``): the
  TorchScript-compiled :class:`~les_model.nn.graph_model.LesGraphModel`, vesin neighbour list every call;
- ``scripted``: ``metatomic_ase.MetatomicCalculator`` on the model written by
  :func:`~les_model.metatomic_model.export_metatomic` (TorchScript, metatomic's neighbour list with its skin).

Both start from the same atoms and velocities; the energies of step 0 are compared (printed as ``|dE|`` in eV) so a
speed number never comes from a different potential. Needs the ``export`` extra.

Usage::

    python benchmarks/md.py [--sizes 192 1536] [--threads 2] [--repeats 3] [--rounds 3] [--dtype float64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def _dynamics(atoms, calc):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms.calc = calc
    return VelocityVerlet(atoms, timestep=0.5 * units.fs)


def build(n_atoms: int, args, workdir: Path) -> dict:
    """Return ``{'eager', 'ts-native', 'scripted': dynamics, 'energy_difference': max |dE| in eV}`` (``n_atoms``)."""
    from metatomic_ase import MetatomicCalculator

    from les_model.calculator import LesCalculator
    from les_model.cli.md import thermalize
    from les_model.config import ModelConfig
    from les_model.data.synthetic import water_like_box
    from les_model.metatomic_model import export_metatomic
    from les_model.nn.model import LesModel

    torch.manual_seed(0)
    options = {'n_features': args.features, 'n_interactions': args.interactions, 'cutoff': args.cutoff}
    model = LesModel(ModelConfig(**options), species=[1, 8]).eval()
    path = export_metatomic([model], workdir / f'model_{n_atoms}.pt', dtype=getattr(torch, args.dtype))
    atoms = water_like_box(n_atoms // 3)
    thermalize(atoms, 300.0, seed=0)
    eager = _dynamics(atoms.copy(), LesCalculator(model, device='cpu', dtype=args.dtype))
    native = _dynamics(atoms.copy(), LesCalculator(model, device='cpu', dtype=args.dtype, scripted=True))
    scripted = _dynamics(atoms.copy(), MetatomicCalculator(str(path), device='cpu'))
    reference = eager.atoms.get_potential_energy()
    difference = max(abs(reference - dyn.atoms.get_potential_energy()) for dyn in (native, scripted))
    return {'eager': eager, 'ts-native': native, 'scripted': scripted, 'energy_difference': difference}


def steps_per_second(dyn, repeats: int) -> float:
    """MD steps per second over ``repeats`` steps."""
    start = time.perf_counter()
    dyn.run(repeats)
    return repeats / (time.perf_counter() - start)


def main(argv=None) -> dict:
    """Run the benchmark; print and return ``{n_atoms: {'eager', 'ts-native', 'scripted': steps/s, 'dE': eV}}``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[192, 1536])
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--repeats', type=int, default=3, help='MD steps per timing round')
    parser.add_argument('--rounds', type=int, default=3, help='timing rounds; the best is reported')
    parser.add_argument('--features', type=int, default=64)
    parser.add_argument('--interactions', type=int, default=2)
    parser.add_argument('--cutoff', type=float, default=5.0)
    parser.add_argument('--dtype', default='float64', choices=['float32', 'float64'])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f'cpu threads={args.threads} features={args.features} interactions={args.interactions} cutoff={args.cutoff} Å '
        f'{args.dtype}, velocity Verlet 0.5 fs, best of {args.rounds} rounds x {args.repeats} steps'
    )
    header = (
        f'{"atoms":>6} {"eager steps/s":>14} {"ts-native steps/s":>18} {"scripted steps/s":>17} {"speed-up":>9} '
        f'{"|dE| step 0 [eV]":>17}'
    )
    print(header)
    print('-' * len(header))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            runs = build(n, args, Path(tmp))
            best = {'eager': 0.0, 'ts-native': 0.0, 'scripted': 0.0}
            for kind in best:
                runs[kind].run(2)  # warm-up (TorchScript profiling runs, first neighbour list)
            for _ in range(args.rounds):  # interleaved; the best round is the least disturbed
                for kind in best:
                    best[kind] = max(best[kind], steps_per_second(runs[kind], args.repeats))
            rows[n] = {**best, 'dE': runs['energy_difference']}
            ratio = best['scripted'] / best['eager']
            print(
                f'{n:>6} {best["eager"]:>14.2f} {best["ts-native"]:>18.2f} {best["scripted"]:>17.2f} {ratio:>8.2f}x '
                f'{runs["energy_difference"]:>17.1e}'
            )
    return rows


if __name__ == '__main__':
    main()
