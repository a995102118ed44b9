"""Active learning vs random labels: held-out force error after a campaign vs the same labels picked at random.

One run does all of it on a temporary SQLite profile (no broker, no daemon; ``setup_profile`` of
``benchmarks/labelling.py``; the runner polls finished sub-processes every second instead of AiiDA's default 60 s):

1. A real ``les.active_learning`` campaign: by default the demo's (``examples/demo.py``: a 24-atom GFN1-xTB water box,
   ``DEMO_OVERRIDES``), with ``--label-budget`` / ``--generations`` to change its size. Read back from the provenance
   graph: the held-out DFT set (the campaign's ``validation_dataset``), the initial training frames, the N_al frames
   the campaign selected and labelled, and the MD pool (every frame of every finished ``les.md`` trajectory).
2. Random baseline: 2*N_al frames drawn uniformly (seeded, without replacement) from the pool frames the campaign did
   NOT label; the "N_al random" set is the first half of that draw (nested sets). They are labelled by ``les.label``
   with the campaign's own labelling inputs (same CP2K protocol and level of theory), so they are in the provenance
   graph. ``--pool-test`` more pool frames (disjoint from all of the above) are labelled as a second test set, drawn
   from the MD distribution (the campaign's held-out set holds perturbed copies of the seeds only).
3. Three training sets: (a) initial + AL, (b) initial + N_al random, (c) initial + 2*N_al random, each trained from
   scratch with ``les_model`` (``Trainer``, ``--jobs`` worker processes, not through AiiDA) using the campaign's
   final TrainConfig (same epochs, seeds seed and seed+1, ...) and evaluated on the test sets: force RMSE (meV/Å),
   energy RMSE (meV/atom), mean over the seeds. The held-out set is never shown to the training (model selection
   on the training loss) unless ``--select-on-heldout`` mirrors the campaign, which validates on it.
4. Ratios RMSE(random N_al)/RMSE(AL) and RMSE(random 2N_al)/RMSE(AL) (goal of issue #8: AL with N labels matches
   random with >= 2N), and the orchestration overhead of the campaign: 1 - |union of [ctime, mtime] of its
   CalcJobNodes| / campaign wall time, a lower bound because upload, retrieval and parsing happen inside those
   intervals.

Usage::

    python benchmarks/active_learning.py [--label-budget 40] [--generations 3] [--seeds 2] [--output results.json]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import multiprocessing
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from ase import Atoms

ROOT = pathlib.Path(__file__).resolve().parents[1]
POLL_INTERVAL_S = 1  # s; an integer option
ARMS = {'al': 'initial + AL', 'random_n': 'initial + N_al random', 'random_2n': 'initial + 2N_al random'}


# --- pure helpers --------------------------------------------------------------------------------------------------
def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by ``intervals`` ``[(start, end), ...]`` (s), overlaps counted once."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted((min(a, b), max(a, b)) for a, b in intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def orchestration_overhead(intervals: list[tuple[float, float]], wall: float) -> float:
    """1 - (time covered by the CalcJob intervals) / ``wall``: the share of wall time no CalcJob was running."""
    if wall <= 0:
        raise ValueError(f'wall time must be positive, got {wall}')
    return 1.0 - union_length(intervals) / wall


def pick_random(n_pool: int, n_pick: int, seed: int, exclude=()) -> list[int]:
    """``n_pick`` distinct indices of ``range(n_pool)`` minus ``exclude``, uniformly at random (seeded), in draw order.

    :raises ValueError: when fewer than ``n_pick`` indices are left.
    """
    available = np.setdiff1d(np.arange(n_pool), np.asarray(sorted(set(exclude)), dtype=int))
    if n_pick > len(available):
        raise ValueError(f'cannot pick {n_pick} frames from {len(available)} available (pool {n_pool})')
    return [int(i) for i in np.random.default_rng(seed).permutation(available)[:n_pick]]


def matching_indices(pool: list[Atoms], frames: list[Atoms], tolerance: float = 1e-4) -> list[int]:
    """Index in ``pool`` of each of ``frames`` (same numbers, positions and cell within ``tolerance`` Å), or -1."""
    found = []
    for frame in frames:
        match = -1
        for index, candidate in enumerate(pool):
            if (
                len(candidate) == len(frame)
                and np.array_equal(candidate.numbers, frame.numbers)
                and np.allclose(candidate.positions, frame.positions, atol=tolerance, rtol=0)
                and np.allclose(candidate.cell.array, frame.cell.array, atol=tolerance, rtol=0)
            ):
                match = index
                break
        found.append(match)
    return found


def clean_frame(atoms: Atoms, **info) -> Atoms:
    """The frame without MD predictions: numbers, positions, cell, pbc, total charge / spin, plus ``info``."""
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    clean.info.update({k: atoms.info[k] for k in ('total_charge', 'spin_multiplicity') if k in atoms.info}, **info)
    return clean


def ratios(errors: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """``{'<arm>/al_<metric>': RMSE(arm) / RMSE(AL)}`` for the random arms, per metric (None without an AL value)."""
    out = {}
    for arm in ('random_n', 'random_2n'):
        for metric, value in errors.get(arm, {}).items():
            reference = errors.get('al', {}).get(metric)
            out[f'{arm}/al_{metric}'] = value / reference if reference else None
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line (``--help`` lists it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--label-budget', type=int, help='Campaign label budget, initial frames included [demo].')
    parser.add_argument('--generations', type=int, help='Campaign max_generations [demo].')
    parser.add_argument('--seeds', type=int, default=2, help='Training seeds per training set.')
    parser.add_argument('--random-seed', type=int, default=0, help='Seed of the random picks from the MD pool.')
    parser.add_argument('--pool-test', type=int, default=16, help='Extra test frames labelled from the MD pool.')
    parser.add_argument('--epochs', type=int, help="Override the campaign's epochs (all three sets alike) [campaign].")
    parser.add_argument(
        '--select-on-heldout', action='store_true', help='Validate on the held-out set (as the campaign).'
    )
    parser.add_argument('--jobs', type=int, default=2, help='Trainings run at once (worker processes).')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per training.')
    parser.add_argument('--np', dest='np_procs', type=int, default=1, help='Default MPI processes of the computer.')
    parser.add_argument('--output', type=pathlib.Path, help='Write the figures as JSON here.')
    parser.add_argument(
        '--smoke', action='store_true', help='Bare `fast` protocol, no demo overrides: checks the script, no science.'
    )
    return parser


# --- AiiDA side ----------------------------------------------------------------------------------------------------
def _load(name: str, path: pathlib.Path):
    """Import a script (``examples/demo.py``, ``benchmarks/labelling.py``) from its file: neither is a package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_les_codes(computer) -> None:
    """Register ``les-train``, ``les-md`` and ``les-eval`` on ``computer`` under the labels the demo loads."""
    from aiida import orm

    from aiida_les.cli.setup import CODES

    for label in ('les-train', 'les-md', 'les-eval'):
        executable, plugin, prepend = CODES[label]
        path = shutil.which(executable) or shutil.which(executable, path=str(pathlib.Path(sys.executable).parent))
        if path is None:
            raise SystemExit(f'{executable} is not installed (pip install -e .).')
        orm.InstalledCode(
            label=label,
            computer=computer,
            filepath_executable=path,
            default_calc_job_plugin=plugin,
            prepend_text=prepend,
        ).store()


def run_campaign(demo, label_budget: int | None, generations: int | None, smoke: bool = False):
    """Run the demo campaign (sizes overridden when given; bare `fast` protocol if ``smoke``); return node, wall s."""
    from aiida.engine import run_get_node

    overrides = {'parameters': {}} if smoke else copy.deepcopy(demo.DEMO_OVERRIDES)
    if label_budget is not None:
        overrides['parameters']['label_budget'] = label_budget
    if generations is not None:
        overrides['parameters']['max_generations'] = generations
    start = time.perf_counter()
    _, node = run_get_node(demo.demo_builder(overrides=overrides))
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f'campaign {node.pk} failed: exit {node.exit_status} {node.exit_message}')
    return node, wall


def campaign_data(node) -> dict:
    """Held-out, initial and AL-labelled frames, MD pool, final TrainConfig and initial labelling node of a campaign."""
    from aiida.common.links import LinkType

    from aiida_les.utils.conversion import trajectory_to_ase
    from workchains.active_learning.history import generation_children

    called = {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()}
    called.update({link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK)})
    initial = node.inputs.dataset if 'dataset' in node.inputs else called['split_initial'].outputs.train
    children = generation_children(node)
    al = [
        frame
        for generation in sorted(children)
        for label in children[generation].get('label', [])
        if label.is_finished_ok and 'labelled' in label.outputs
        for frame in label.outputs.labelled.get_ase()
    ]
    md_jobs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.md' and n.is_finished_ok]
    pool = [
        clean_frame(atoms, md_pk=job.pk, md_frame=index)
        for job in sorted(md_jobs, key=lambda n: n.pk)
        for index, atoms in enumerate(trajectory_to_ase(job.outputs.trajectory))
    ]
    last = children[max(children)]['train'][0]
    return {
        'heldout': node.outputs.validation_dataset.get_ase(),
        'initial': initial.get_ase(),
        'al': al,
        'pool': pool,
        'n_md_runs': len(md_jobs),
        'train_config': last.inputs.train.config.get_dict(),
        'label_node': called.get('initial_labels') or children[min(children)]['label'][0],
        'final_dataset_size': node.outputs.dataset.n_structures,
    }


def calcjob_intervals(node) -> list[tuple[float, float]]:
    """``[(ctime, mtime), ...]`` (POSIX s) of every CalcJobNode the campaign ran."""
    from aiida import orm

    return [
        (n.ctime.timestamp(), n.mtime.timestamp()) for n in node.called_descendants if isinstance(n, orm.CalcJobNode)
    ]


def label_frames(label_node, frames: list[Atoms], tag: str) -> tuple[list[Atoms], int]:
    """Label ``frames`` with ``les.label`` on the inputs of ``label_node``; return the labels in input order and pk."""
    from aiida.engine import run_get_node

    from aiida_les.data.dataset import LesDatasetData

    builder = label_node.get_builder_restart()
    builder.dataset = LesDatasetData.from_ase(frames, filename=f'{tag}.extxyz')
    builder.metadata.label = f'benchmark {tag}'
    _, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise SystemExit(f'labelling {tag} failed: exit {node.exit_status} {node.exit_message}')
    labelled = sorted(node.outputs.labelled.get_ase(), key=lambda atoms: int(atoms.info['source_index']))
    return labelled, node.pk


# --- training ------------------------------------------------------------------------------------------------------
def train_and_evaluate(config_dict: dict, train_frames: list[Atoms], tests: dict, seed: int, valid=None) -> dict:
    """Train one model from scratch on ``train_frames``; return test RMSEs ``{test: {forces, energy}}`` and timing."""
    import torch

    from les_model.config import TrainConfig
    from les_model.data.dataset import StructureDataset
    from les_model.train.trainer import Trainer, initialise_model, resolve_dtype

    config = TrainConfig.from_dict({**config_dict, 'seed': seed})
    train_set = StructureDataset.from_atoms(train_frames, config.keys)
    valid_set = StructureDataset.from_atoms(valid, config.keys) if valid else StructureDataset([])
    start = time.perf_counter()
    model = initialise_model(config, train_set, seed)
    trainer = Trainer(config, model, train_set, valid_set, torch.device('cpu'), resolve_dtype(config.dtype), seed)
    status = trainer.fit()
    out = {'seed': seed, 'status': status, 'best_epoch': trainer.best_epoch, 'seconds': time.perf_counter() - start}
    for name, frames in tests.items():
        errors = trainer.evaluate(StructureDataset.from_atoms(frames, config.keys), use_ema=False)
        out[name] = {'forces': errors['forces_rmse'], 'energy': errors['energy_per_atom_rmse']}
    return out


def training_config(campaign_config: dict, epochs: int | None) -> dict:
    """The campaign's TrainConfig for in-process training: no files, no warm start, CPU, no progress bar."""
    config = {k: v for k, v in campaign_config.items() if k not in ('valid_file', 'init_model')}
    # The frames are passed in memory; TrainConfig wants a name all the same.
    config.update(train_file='in-memory', device='cpu', progress=False, max_walltime=0.0, committee_size=1)
    if epochs is not None:
        config['epochs'] = epochs
    return config


# --- main ----------------------------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    """Print the settings, the per-set errors and the ratios."""
    c, r = results['campaign'], results['random']
    t = results['training']
    print(f'\n=== Active learning vs random labels ({results["system"]}, labels: {results["level_of_theory"]}) ===')
    print(
        f'campaign pk {c["pk"]}: {c["n_generations"]} generation(s), stop: {c["stop_reason"]}, '
        f'wall {c["wall_s"]:.0f} s; {c["n_md_runs"]} MD runs, MD pool {c["n_pool"]} frames'
    )
    print(
        f'frames: initial training {c["n_initial"]}, held-out {c["n_heldout"]} (campaign validation set), '
        f'AL-labelled N_al = {c["n_al"]}, pool-test {r["n_pool_test"]}'
    )
    print(
        f'random picks: uniform (seed {r["seed"]}) from the {r["n_available"]} pool frames the campaign did not '
        f'label; N_al set = first half of the 2N_al draw; labelled by les.label pk {r["label_pk"]}'
    )
    print(
        f'training: les_model Trainer directly (not through AiiDA), campaign final TrainConfig from scratch: '
        f'epochs {t["epochs"]}, batch {t["batch_size"]}, lr {t["lr"]}, dtype {t["dtype"]}, seeds {t["seeds"]}; '
        f'model selection on {t["model_selection"]}'
    )
    tests = list(results['tests'])
    header = f'{"training set":<26}{"frames":>7}{"labels":>7}'
    for test in tests:
        header += f'{"F " + test:>18}{"E " + test:>18}'
    print(header + '\n' + ' ' * 40 + '(force RMSE meV/Å, energy RMSE meV/atom; mean over seeds)')
    for arm, label in ARMS.items():
        row = results['arms'][arm]
        line = f'{label:<26}{row["n_train"]:>7}{row["n_labels"]:>7}'
        for test in tests:
            line += f'{row["mean"][test]["forces"]:>18.1f}{row["mean"][test]["energy"]:>18.2f}'
        print(line)
    for test in tests:
        q = results['ratios'][test]
        print(
            f'ratios on {test}: RMSE(random N_al)/RMSE(AL) forces {q["random_n/al_forces"]:.2f} energy '
            f'{q["random_n/al_energy"]:.2f}; RMSE(random 2N_al)/RMSE(AL) forces {q["random_2n/al_forces"]:.2f} '
            f'energy {q["random_2n/al_energy"]:.2f}  (goal: 2N_al ratio <= 1)'
        )
    o = results['overhead']
    print(
        f'orchestration overhead: 1 - {o["calcjob_union_s"]:.0f} s (union of [ctime, mtime] of {o["n_calcjobs"]} '
        f'CalcJobs) / {c["wall_s"]:.0f} s wall = {100 * o["fraction"]:.1f} % (lower bound: upload, retrieval and '
        'parsing happen inside those intervals)'
    )


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_arms(config: dict, initial: list[Atoms], sets: dict, tests: dict, seeds: list[int], **kwargs) -> dict:
    """Train every set (``initial`` + its frames) once per seed; per-run errors and their means over the seeds.

    :param kwargs: ``valid`` (validation frames or None), ``jobs`` (worker processes; 1 trains in this process),
        ``threads`` (torch threads per training).
    """
    valid, jobs, threads = kwargs.get('valid'), kwargs.get('jobs', 1), kwargs.get('threads', 1)
    tasks = [(arm, seed) for arm in sets for seed in seeds]
    runs = {}
    if jobs > 1:  # spawned workers run les_model only (no AiiDA state is inherited)
        context = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_set_threads, initargs=(threads,)) as pool:
            futures = {
                pool.submit(train_and_evaluate, config, initial + sets[arm], tests, seed, valid): (arm, seed)
                for arm, seed in tasks
            }
            for future in as_completed(futures):
                runs[futures[future]] = future.result()
                print(f'trained {ARMS[futures[future][0]]} seed {futures[future][1]}', flush=True)
    else:
        _set_threads(threads)
        for arm, seed in tasks:
            runs[arm, seed] = train_and_evaluate(config, initial + sets[arm], tests, seed, valid)
            print(f'trained {ARMS[arm]} seed {seed}', flush=True)
    arms = {}
    for arm, extra in sets.items():
        own = [runs[arm, seed] for seed in seeds]
        mean = {t: {m: statistics.mean(run[t][m] for run in own) for m in ('forces', 'energy')} for t in tests}
        arms[arm] = {'n_train': len(initial) + len(extra), 'n_labels': len(extra), 'runs': own, 'mean': mean}
    return arms


def main(argv: list[str] | None = None) -> int:
    """Run campaign, random baseline, trainings; print the table; write JSON when asked."""
    args = build_parser().parse_args(argv)
    import logging

    demo = _load('les_demo', ROOT / 'examples' / 'demo.py')
    setup_profile = _load('les_labelling_benchmark', ROOT / 'benchmarks' / 'labelling.py').setup_profile
    with tempfile.TemporaryDirectory(prefix='les-al-benchmark-') as workdir:
        code = setup_profile(pathlib.Path(workdir), args.np_procs)
        register_les_codes(code.computer)
        from aiida.manage import get_manager

        # Without a broker a parent sees its child finish only by polling (`runner.poll.interval`, default 60 s per
        # level of nesting); the demo's ZeroMQ broker tells it at once. Poll fast so the timings compare.
        get_manager().get_profile().set_option('runner.poll.interval', POLL_INTERVAL_S)
        for handler in logging.getLogger('aiida').handlers:
            if type(handler).__name__ != 'DBLogHandler':  # the database keeps every report line
                handler.addFilter(demo._CampaignReportsOnly())
        print('running the campaign ...', flush=True)
        node, wall = run_campaign(demo, args.label_budget, args.generations, args.smoke)
        data = campaign_data(node)
        n_al, pool = len(data['al']), data['pool']
        if len(data['initial']) + n_al != data['final_dataset_size']:
            print(f'warning: initial {len(data["initial"])} + AL {n_al} != final dataset {data["final_dataset_size"]}')
        labelled_in_pool = sorted({i for i in matching_indices(pool, data['al']) if i >= 0})
        n_available = len(pool) - len(labelled_in_pool)
        n_random = min(2 * n_al, n_available)  # a small pool (e.g. --smoke) cannot give 2 N_al
        if n_random < 2 * n_al:
            print(f'warning: only {n_available} unlabelled pool frames: {n_random} random picks instead of {2 * n_al}')
        n_test = max(0, min(args.pool_test, n_available - n_random))
        picks = pick_random(len(pool), n_random + n_test, args.random_seed, exclude=labelled_in_pool)
        print(f'campaign done in {wall:.0f} s; labelling {n_random} random + {n_test} pool-test frames ...', flush=True)
        random_frames, random_pk = label_frames(data['label_node'], [pool[i] for i in picks[:n_random]], 'random')
        random_n = [a for a in random_frames if int(a.info['source_index']) < n_al]
        tests = {'held-out': data['heldout']}
        if n_test:
            tests['pool-test'], _ = label_frames(data['label_node'], [pool[i] for i in picks[n_random:]], 'pooltest')
        config = training_config(data['train_config'], args.epochs)
        seeds = [int(config.get('seed', 0)) + k for k in range(args.seeds)]
        sets = {'al': data['al'], 'random_n': random_n, 'random_2n': random_frames}
        valid = data['heldout'] if args.select_on_heldout else None
        jobs = {'jobs': args.jobs, 'threads': args.threads}
        arms = train_arms(config, data['initial'], sets, tests, seeds, valid=valid, **jobs)
        intervals = calcjob_intervals(node)
        summary = node.outputs.summary.get_dict()
        results = {
            'system': 'water box (24 atoms), examples/demo.py' + (' (--smoke)' if args.smoke else ''),
            'level_of_theory': data['heldout'][0].info.get('level_of_theory'),
            'campaign': {
                'pk': node.pk,
                'wall_s': wall,
                'n_generations': summary['n_generations'],
                'stop_reason': summary['stop_reason'],
                'parameters': node.inputs.parameters.get_dict(),
                'n_md_runs': data['n_md_runs'],
                'n_pool': len(pool),
                'n_initial': len(data['initial']),
                'n_heldout': len(data['heldout']),
                'n_al': n_al,
                'n_al_found_in_pool': len(labelled_in_pool),
            },
            'random': {
                'seed': args.random_seed,
                'n_available': n_available,
                'label_pk': random_pk,
                'n_labelled': len(random_frames),
                'n_pool_test': len(tests.get('pool-test', [])),
                'pool_indices': picks,
            },
            'training': {
                'where': 'les_model Trainer directly (worker processes), not through AiiDA',
                **{key: config.get(key) for key in ('epochs', 'batch_size', 'lr', 'dtype')},
                'seeds': seeds,
                'model_selection': 'the held-out set' if args.select_on_heldout else 'the training loss',
                'config': config,
            },
            'tests': {name: len(frames) for name, frames in tests.items()},
            'arms': arms,
            'ratios': {test: ratios({a: arms[a]['mean'][test] for a in arms}) for test in tests},
            'overhead': {
                'n_calcjobs': len(intervals),
                'calcjob_union_s': union_length(intervals),
                'fraction': orchestration_overhead(intervals, wall),
            },
        }
    print_table(results)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1, default=str), encoding='utf-8')
        print(f'figures written to {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
