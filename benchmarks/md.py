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

Memory per atom (``--memory``, on by default): for each size and route, a fresh Python process builds the calculator,
does one warm-up call on a 30-atom box, then one energy + forces (+ stress) call on the benchmark box; the number is
(peak resident set size after the call - peak before it) / atoms, in kB/atom (``VmHWM``; torch's allocations are
invisible to tracemalloc).

Usage::

    python benchmarks/md.py [--sizes 192 1536 3000] [--threads 1] [--repeats 3] [--rounds 3] [--dtype float64]
        [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _dynamics(atoms, calc):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms.calc = calc
    return VelocityVerlet(atoms, timestep=0.5 * units.fs)


KINDS = ('eager', 'ts-native', 'scripted')


def _model(args):
    from les_model.config import ModelConfig
    from les_model.nn.model import LesModel

    torch.manual_seed(0)
    options = {'n_features': args.features, 'n_interactions': args.interactions, 'cutoff': args.cutoff}
    return LesModel(ModelConfig(**options), species=[1, 8]).eval()


def _calculator(kind: str, model, args, workdir: Path, n_atoms: int):
    """The ASE calculator of one route (``eager``, ``ts-native`` or ``scripted``)."""
    from les_model.calculator import LesCalculator

    if kind == 'scripted':
        from metatomic_ase import MetatomicCalculator

        from les_model.metatomic_model import export_metatomic

        path = export_metatomic([model], workdir / f'model_{n_atoms}.pt', dtype=getattr(torch, args.dtype))
        return MetatomicCalculator(str(path), device='cpu')
    return LesCalculator(model, device='cpu', dtype=args.dtype, scripted=kind == 'ts-native')


def build(n_atoms: int, args, workdir: Path) -> dict:
    """Return ``{'eager', 'ts-native', 'scripted': dynamics, 'energy_difference': max |dE| in eV}`` (``n_atoms``)."""
    from les_model.cli.md import thermalize
    from les_model.data.synthetic import water_like_box

    model = _model(args)
    atoms = water_like_box(n_atoms // 3)
    thermalize(atoms, 300.0, seed=0)
    runs = {kind: _dynamics(atoms.copy(), _calculator(kind, model, args, workdir, n_atoms)) for kind in KINDS}
    reference = runs['eager'].atoms.get_potential_energy()
    difference = max(abs(reference - runs[kind].atoms.get_potential_energy()) for kind in KINDS[1:])
    return {**runs, 'energy_difference': difference}


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB: ``VmHWM`` on Linux (``ru_maxrss`` keeps the parent's peak
    across fork + exec, so a probe started by a large process would read the parent's size), else ``ru_maxrss``.
    """
    status = Path('/proc/self/status')
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith('VmHWM:'):
                return float(line.split()[1]) / 1024.0  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux, bytes on macOS


def memory_probe(kind: str, n_atoms: int, args) -> dict:
    """One force call of route ``kind`` on ``n_atoms`` in this process: peak RSS growth [MB] and per atom [kB]."""
    from les_model.data.synthetic import water_like_box

    with tempfile.TemporaryDirectory() as tmp:
        calc = _calculator(kind, _model(args), args, Path(tmp), n_atoms)
        warm = water_like_box(10)
        warm.calc = calc
        warm.get_forces()
        atoms = water_like_box(n_atoms // 3)
        atoms.calc = calc
        before = _peak_rss_mb()
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
        growth = _peak_rss_mb() - before
    return {'peak_growth_mb': growth, 'kb_per_atom': 1024.0 * growth / len(atoms)}


def memory_per_atom(kind: str, n_atoms: int, args) -> float:
    """Run :func:`memory_probe` in a fresh process (peak RSS never goes down); return kB per atom."""
    command = [sys.executable, __file__, '--memory-probe', kind, str(n_atoms), '--threads', str(args.threads)]
    command += ['--features', str(args.features), '--interactions', str(args.interactions)]
    command += ['--cutoff', str(args.cutoff), '--dtype', args.dtype]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])['kb_per_atom']


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
    parser.add_argument('--no-memory', action='store_true', help='skip the memory-per-atom probes')
    parser.add_argument('--memory-probe', nargs=2, metavar=('KIND', 'ATOMS'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe[0], int(args.memory_probe[1]), args)))
        return {}
    print(
        f'cpu threads={args.threads} features={args.features} interactions={args.interactions} cutoff={args.cutoff} Å '
        f'{args.dtype}, velocity Verlet 0.5 fs, best of {args.rounds} rounds x {args.repeats} steps'
    )
    header = (
        f'{"atoms":>6} {"eager steps/s":>14} {"ts-native steps/s":>18} {"scripted steps/s":>17} {"speed-up":>9} '
        f'{"|dE| step 0 [eV]":>17}  {"kB/atom eager / ts-native / scripted":>37}'
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
            del runs['eager'], runs['ts-native'], runs['scripted']
            memory = {} if args.no_memory else {kind: memory_per_atom(kind, n, args) for kind in KINDS}
            rows[n] = {**best, 'dE': runs['energy_difference'], 'kb_per_atom': memory}
            ratio = best['scripted'] / best['eager']
            kb = ' / '.join(f'{memory[kind]:.0f}' for kind in KINDS) if memory else '-'
            print(
                f'{n:>6} {best["eager"]:>14.2f} {best["ts-native"]:>18.2f} {best["scripted"]:>17.2f} {ratio:>8.2f}x '
                f'{runs["energy_difference"]:>17.1e}  {kb:>37}',
                flush=True,
            )
    return rows


if __name__ == '__main__':
    main()
