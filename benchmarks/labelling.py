"""Labelling throughput with CP2K through AiiDA: labels per hour and the AiiDA overhead per label.

Systems: a 24-atom water box (8 H2O at liquid density, random orientations) and a 64-atom rattled NaCl cell
(2x2x2 conventional cells), or any extxyz files given with ``--structures``. Each label is one ``les.cp2k``
CalcJob run with ``run_get_node`` on a temporary SQLite profile (no broker, no daemon); the first label of each
system is a warm-up and is not timed. Reported per system:

- wall time per label (s) and labels per hour (3600 / wall time);
- CP2K time per label (s): the time the CP2K process ran, measured by the ``les-cp2k`` runner;
- runner overhead: runner time outside CP2K (custodian, input rendering, Python start of the runner excluded);
- AiiDA overhead = (wall - CP2K time) / wall: everything outside CP2K, i.e. process setup, upload, job
  submission and polling, retrieval, parsing and node storage.

Usage::

    python benchmarks/labelling.py [--protocol fast|balanced] [--repeats 3] [--np 1] [--systems water nacl]
                                   [--structures a.xyz b.xyz]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import ase.io
from ase import Atoms
from ase.build import bulk

from les_model.data.synthetic import water_like_box


def nacl_cell(seed: int = 0) -> Atoms:
    """Return a 64-atom NaCl cell (a = 5.64 Å) with 0.05 Å rattling."""
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def setup_profile(workdir: pathlib.Path, np_procs: int):
    """Load a temporary SQLite profile with a localhost computer and the ``les-cp2k`` code."""
    from aiida import load_profile, orm
    from aiida.storage.sqlite_temp import SqliteTempBackend

    load_profile(SqliteTempBackend.create_profile('labelling-benchmark'), allow_switch=True)
    computer = orm.Computer(
        label='localhost',
        hostname='localhost',
        transport_type='core.local',
        scheduler_type='core.direct',
        workdir=str(workdir),
    ).store()
    computer.configure(safe_interval=0)
    computer.set_minimum_job_poll_interval(0)
    computer.set_default_mpiprocs_per_machine(np_procs)
    executable = shutil.which('les-cp2k') or shutil.which('les-cp2k', path=str(pathlib.Path(sys.executable).parent))
    if executable is None:
        raise SystemExit('les-cp2k is not installed (pip install -e .).')
    return orm.InstalledCode(
        label='cp2k',
        computer=computer,
        filepath_executable=executable,
        default_calc_job_plugin='les.cp2k',
        prepend_text='\n'.join(
            ['export OMPI_ALLOW_RUN_AS_ROOT=1', 'export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1', 'export OMP_NUM_THREADS=1']
        ),
    ).store()


def label_once(code, atoms: Atoms, protocol: str, np_procs: int) -> dict:
    """Run one ``les.cp2k`` label through AiiDA; return wall, CP2K and runner times (s)."""
    from aiida import orm
    from aiida.engine import run_get_node
    from aiida.plugins import CalculationFactory

    from workchains.label.cp2k_base import LesCp2kBaseWorkChain

    cp2k = LesCp2kBaseWorkChain.get_protocol_inputs(protocol)['cp2k']
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': np_procs}, 'max_wallclock_seconds': 3600}
    start = time.perf_counter()
    results, node = run_get_node(
        CalculationFactory('les.cp2k'),
        code=code,
        structure=orm.StructureData(ase=atoms),
        parameters=orm.Dict(cp2k['parameters']),
        settings=orm.Dict(cp2k['settings']),
        metadata={'options': options},
    )
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise RuntimeError(f'label failed: {node.exit_status} {node.exit_message}')
    params = results['output_parameters'].get_dict()
    return {'wall': wall, 'cp2k': params['cp2k_seconds'], 'runner': params['runner_seconds']}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', default='fast', choices=['fast', 'balanced'], help='CP2K protocol.')
    parser.add_argument('--repeats', type=int, default=3, help='Timed labels per system (after one warm-up).')
    parser.add_argument('--np', dest='np_procs', type=int, default=1, help='MPI processes for CP2K.')
    parser.add_argument('--systems', nargs='*', default=['water', 'nacl'], choices=['water', 'nacl'], help='Systems.')
    parser.add_argument('--structures', nargs='*', type=pathlib.Path, help='extxyz files to label instead.')
    args = parser.parse_args(argv)

    if args.structures:
        systems = {path.name: ase.io.read(path) for path in args.structures}
    else:
        builders = {
            'water': ('water box (24 atoms)', lambda: water_like_box(8)),
            'nacl': ('NaCl (64 atoms)', nacl_cell),
        }
        systems = {builders[key][0]: builders[key][1]() for key in args.systems}
    with tempfile.TemporaryDirectory(prefix='les-labelling-') as workdir:
        code = setup_profile(pathlib.Path(workdir), args.np_procs)
        print(f'protocol={args.protocol} np={args.np_procs} repeats={args.repeats} (after 1 warm-up)')  # noqa: T201
        header = f'{"system":<24}{"wall/label s":>14}{"CP2K s":>10}{"runner s":>10}{"labels/h":>10}{"AiiDA ovh":>11}'
        print(header)  # noqa: T201
        for name, atoms in systems.items():
            label_once(code, atoms, args.protocol, args.np_procs)
            runs = []
            for repeat in range(args.repeats):
                displaced = atoms.copy()
                displaced.rattle(0.01, seed=100 + repeat)
                runs.append(label_once(code, displaced, args.protocol, args.np_procs))
            wall = statistics.mean(run['wall'] for run in runs)
            cp2k = statistics.mean(run['cp2k'] for run in runs)
            runner = statistics.mean(run['runner'] for run in runs)
            overhead = (wall - cp2k) / wall
            row = f'{name:<24}{wall:>14.2f}{cp2k:>10.2f}{runner - cp2k:>10.2f}{3600 / wall:>10.0f}'
            print(f'{row}{100 * overhead:>10.1f}%')  # noqa: T201
    return 0


if __name__ == '__main__':
    sys.exit(main())
