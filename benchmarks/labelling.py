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

With ``--load N`` it measures instead the load of many cheap labels through ``les.label`` on the direct scheduler
(localhost): N rattled 4-atom Cu/Al cells labelled by EMT (``les.ase_label``), once with one job per label
(``batch_size`` 1) and once per packed batch size (``--batch-sizes``), ``max_concurrent`` jobs at a time. Reported:
jobs, wall time, labels per minute, wall time per label (the per-label overhead: EMT itself takes < 1 ms), and the
count of labels accounted for (each frame's ``source_index`` and its job's input structure under its key).

Usage::

    python benchmarks/labelling.py [--protocol fast|balanced] [--repeats 3] [--np 1] [--systems water nacl]
                                   [--structures a.xyz b.xyz]
    python benchmarks/labelling.py --load 200 [--batch-sizes 1 25] [--max-concurrent 4]
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


def setup_profile(workdir: pathlib.Path, np_procs: int, executable_name: str | None = 'les-cp2k'):
    """Load a temporary SQLite profile with a localhost computer and the ``les-cp2k`` code (None: no code)."""
    from aiida import load_profile, orm
    from aiida.storage.sqlite_temp import SqliteTempBackend

    # No broker here: a workchain learns that a child ended by polling, every 60 s by default; poll at 0.1 s.
    options = {'runner.poll.interval': 0.1}
    load_profile(SqliteTempBackend.create_profile('labelling-benchmark', options=options), allow_switch=True)
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
    if executable_name is None:
        return None
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


def load_cells(n: int) -> list[Atoms]:
    """Return ``n`` rattled 4-atom fcc Cu, Al and CuAl cells (Å) that EMT can label."""
    cells = []
    for index in range(n):
        symbol, a = [('Cu', 3.61), ('Al', 4.05), ('Cu', 3.80)][index % 3]
        atoms = bulk(symbol, 'fcc', a=a * (1 + 0.001 * (index % 17)), cubic=True)
        if index % 3 == 2:
            atoms.symbols[[1, 2]] = 'Al'
        atoms.rattle(0.05, seed=index)
        cells.append(atoms)
    return cells


def label_load(code, cells: list[Atoms], batch_size: int, max_concurrent: int) -> dict:
    """Label ``cells`` with ``les.label`` (EMT) in batches of ``batch_size``; return timing and accounting."""
    from aiida import orm
    from aiida.engine import run_get_node

    from workchains.label.label import LesLabelWorkChain

    builder = LesLabelWorkChain.get_builder_from_protocol(
        code,
        [orm.StructureData(ase=atoms) for atoms in cells],
        labeller='ase',
        calculator={'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'},
        overrides={'max_concurrent': max_concurrent, 'batch_size': batch_size},
    )
    start = time.perf_counter()
    results, node = run_get_node(builder)
    wall = time.perf_counter() - start
    report = results['report'].get_dict()
    jobs = {link.node.uuid: link.node for link in node.base.links.get_outgoing(node_class=orm.CalcJobNode).all()}
    traced = 0
    for frame in results['labelled'].get_ase() if 'labelled' in results else []:
        job = jobs.get(frame.info.get('label_job_uuid'))
        key = f'frame_{int(frame.info["source_index"]):04d}'
        structure = job.inputs.structure if job is not None and 'structure' in job.inputs else None
        if job is not None and structure is None and key in job.inputs.structures:
            structure = job.inputs.structures[key]
        traced += structure is not None and structure.uuid == frame.info.get('structure_uuid')
    return {'wall': wall, 'jobs': len(jobs), 'labelled': report['n_labelled'], 'traced': traced}


def setup_ase_code(workdir: pathlib.Path):
    """A temporary SQLite profile with localhost (direct scheduler) and the ``les-ase-label`` code."""
    setup_profile(workdir, 1, executable_name=None)
    from aiida import orm

    executable = shutil.which('les-ase-label') or shutil.which(
        'les-ase-label', path=str(pathlib.Path(sys.executable).parent)
    )
    if executable is None:
        raise SystemExit('les-ase-label is not installed (pip install -e .).')
    return orm.InstalledCode(
        label='ase-label',
        computer=orm.load_computer('localhost'),
        filepath_executable=executable,
        default_calc_job_plugin='les.ase_label',
    ).store()


def run_load(args) -> int:
    """Print the load table: one job per label against packed batches."""
    cells = load_cells(args.load)
    with tempfile.TemporaryDirectory(prefix='les-labelling-load-') as workdir:
        code = setup_ase_code(pathlib.Path(workdir))
        print(
            f'{args.load} EMT labels via les.label, direct scheduler (localhost), max_concurrent={args.max_concurrent}'
        )  # noqa: T201
        header = f'{"batch_size":>10}{"jobs":>6}{"wall s":>9}{"labels/min":>12}{"s/label":>9}{"accounted":>11}'
        print(header)  # noqa: T201
        for batch_size in args.batch_sizes:
            run = label_load(code, cells, batch_size, args.max_concurrent)
            row = f'{batch_size:>10}{run["jobs"]:>6}{run["wall"]:>9.1f}{60 * args.load / run["wall"]:>12.1f}'
            print(f'{row}{run["wall"] / args.load:>9.3f}{run["traced"]:>6}/{args.load}')  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', default='fast', choices=['fast', 'balanced'], help='CP2K protocol.')
    parser.add_argument('--repeats', type=int, default=3, help='Timed labels per system (after one warm-up).')
    parser.add_argument('--np', dest='np_procs', type=int, default=1, help='MPI processes for CP2K.')
    parser.add_argument('--systems', nargs='*', default=['water', 'nacl'], choices=['water', 'nacl'], help='Systems.')
    parser.add_argument('--structures', nargs='*', type=pathlib.Path, help='extxyz files to label instead.')
    parser.add_argument('--load', type=int, help='Label this many EMT cells through les.label instead (load table).')
    parser.add_argument('--batch-sizes', nargs='*', type=int, default=[1, 25], help='batch_size values for --load.')
    parser.add_argument('--max-concurrent', type=int, default=4, help='max_concurrent for --load.')
    args = parser.parse_args(argv)
    if args.load:
        return run_load(args)

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
