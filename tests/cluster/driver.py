"""Helper run as a subprocess by the cluster tests: submit a ``les.train.base`` workchain to the daemon, report states.

The tests run under aiida's pytest fixtures (a throw-away profile), so everything on the production profile goes
through this script in its own interpreter::

    python driver.py --profile les-prod submit-train [--sleep S] [--hold] [--partition cpu|gpu] [--gpus N]
                                                                                        -> {"pk": ...}
    python driver.py --profile les-prod state PK                                        -> {"process_state": ...}

Output is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys


def _dataset(n_frames: int = 4):
    """Rattled NaCl cells labelled with Lennard-Jones (eV, eV/Å): enough for two epochs of the fast protocol."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_les.data.dataset import LesDatasetData

    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(stdev=0.05, seed=index)
        atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return LesDatasetData.from_ase(frames)


#: What a GPU job records of its environment (file ``gpu_env.txt`` in its working directory).
GPU_ENVIRONMENT = 'CUDA_VISIBLE_DEVICES|SLURM_JOB_GPUS|SLURM_GPUS_ON_NODE|SLURM_JOB_PARTITION|GPU_DEVICE_ORDINAL'


def submit_train(
    computer: str,
    partition: str,
    sleep: float,
    hold: bool = False,
    epochs: int = 0,
    max_walltime: float = 0.0,
    gpus: int = 0,
) -> dict:
    """Submit the fast-protocol training on ``les-train@computer``.

    :param sleep: seconds of ``sleep`` prepended to the job script (keeps the job running while a fault is injected).
    :param hold: submit the job held (``sbatch --hold``): it stays PENDING until ``scontrol release``.
    :param epochs: epochs to train (0: the protocol's).
    :param max_walltime: the program's own time budget per job [s] (0: derived from the scheduler walltime); when
        it runs out the job checkpoints and exits 400, and the workchain resumes from the checkpoint.
    :param gpus: > 0: the options of :func:`~aiida_les.utils.resources.gpu_options` (``--gres=gpu:<gpus>``,
        ``device: cuda``, one core), and the job writes its GPU environment variables to ``gpu_env.txt``.
    """
    from aiida import orm
    from aiida.engine import submit

    from aiida_les.utils.resources import cpu_options, gpu_options
    from workchains.train.base import LesTrainBaseWorkChain

    code = orm.load_code(f'les-train@{computer}')
    if gpus:
        options = gpu_options(num_gpus=gpus, max_wallclock_seconds=600, num_cores=1, queue_name=partition)
        options['prepend_text'] = f"env | grep -E '^({GPU_ENVIRONMENT})=' | sort > gpu_env.txt"
    else:
        options = cpu_options(max_wallclock_seconds=600, queue_name=partition)
    if sleep > 0:
        options['prepend_text'] = '\n'.join(filter(None, [options.get('prepend_text'), f'sleep {sleep}']))
    if hold:
        options['custom_scheduler_commands'] = '#SBATCH --hold'
    overrides = {}
    if epochs or max_walltime:
        config = {'checkpoint_every': 5}
        if epochs:
            config['epochs'] = epochs
        if max_walltime:
            config['max_walltime'] = max_walltime
        overrides = {'train': {'config': config}, 'max_iterations': 20}
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(
        code, _dataset(), 'fast', overrides=overrides, options=options
    )
    node = submit(builder)
    return {'pk': node.pk}


def _single(node, label: str, incoming: bool = False) -> int | None:
    """Return the pk of the node linked to ``node`` with ``label`` (None if absent), tolerant of duplicate links."""
    links = node.base.links.get_incoming() if incoming else node.base.links.get_outgoing()
    pks = [link.node.pk for link in links.all() if link.link_label == label]
    return pks[0] if pks else None


def _epochs_trained(calc) -> int | None:
    """Return the number of epochs in the retrieved ``metrics.json`` of a les.train job (None if absent)."""
    from aiida import orm

    retrieved = _single(calc, 'retrieved')
    if retrieved is None:
        return None
    try:
        metrics = json.loads(orm.load_node(retrieved).base.repository.get_object_content('metrics.json'))
    except (FileNotFoundError, OSError, ValueError):
        return None
    return max((len(member.get('epochs', [])) for member in metrics.get('members', [])), default=None)


def state(pk: int) -> dict:
    """Return the workchain's state and, for each CalcJob it called, the scheduler job id and states."""
    from aiida import orm
    from aiida.common.links import LinkType

    node = orm.load_node(pk)
    calcs = []
    for link in node.base.links.get_outgoing(node_class=orm.CalcJobNode).all():
        calc = link.node
        script = ''
        with contextlib.suppress(FileNotFoundError, OSError):
            script = calc.base.repository.get_object_content('_aiidasubmit.sh')
        calcs.append(
            {
                'pk': calc.pk,
                'job_id': calc.get_job_id(),
                'calc_job_state': calc.get_state().value if calc.get_state() else None,
                'scheduler_state': calc.get_scheduler_state().value if calc.get_scheduler_state() else None,
                'process_state': calc.process_state.value if calc.process_state else None,
                'exit_status': calc.exit_status,
                'parent_folder': _single(calc, 'parent_folder', incoming=True),
                'remote_folder': _single(calc, 'remote_folder'),
                'epochs_trained': _epochs_trained(calc),
                'output_labels': sorted(link.link_label for link in calc.base.links.get_outgoing().all()),
                'partition': calc.get_option('queue_name'),
                'scheduler_commands': calc.get_option('custom_scheduler_commands'),
                'remote_workdir': calc.get_remote_workdir(),
                'uses_sbatch': '#SBATCH' in script,
                'ctime': calc.ctime.timestamp(),
                'mtime': calc.mtime.timestamp(),
            }
        )
    outputs = sorted(link.link_label for link in node.base.links.get_outgoing(link_type=LinkType.RETURN).all())
    return {
        'pk': node.pk,
        'process_state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'is_finished_ok': node.is_finished_ok,
        'calcs': sorted(calcs, key=lambda item: item['pk']),
        'outputs': outputs,
        'ctime': node.ctime.timestamp(),
        'mtime': node.mtime.timestamp(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run one action on the profile and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--profile', default='les-prod')
    parser.add_argument('--computer', default='slurm')
    commands = parser.add_subparsers(dest='command', required=True)
    train = commands.add_parser('submit-train')
    train.add_argument('--partition', default='cpu')
    train.add_argument('--sleep', type=float, default=0.0)
    train.add_argument('--hold', action='store_true')
    train.add_argument('--epochs', type=int, default=0)
    train.add_argument('--max-walltime', type=float, default=0.0)
    train.add_argument('--gpus', type=int, default=0)
    query = commands.add_parser('state')
    query.add_argument('pk', type=int)
    args = parser.parse_args(argv)

    from aiida import load_profile

    load_profile(args.profile)
    if args.command == 'submit-train':
        result = submit_train(
            args.computer, args.partition, args.sleep, args.hold, args.epochs, args.max_walltime, args.gpus
        )
    else:
        result = state(args.pk)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
