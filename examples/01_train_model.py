"""Example 01: train an LES model with ``les.train.base`` on generated data and print its validation errors.

Run with the project profile (``make setup`` registers ``les-train@localhost``)::

    verdi run examples/01_train_model.py                # fast protocol: tiny model, 2 epochs, seconds on CPU
    verdi run examples/01_train_model.py -p balanced    # production settings
    verdi run examples/01_train_model.py --gpu          # request a GPU (SLURM --gres) and train on CUDA

The data are rattled rocksalt NaCl cells labelled with a Lennard-Jones potential (energies in eV, forces in eV/Å):
a stand-in that needs no DFT. For real data, pass an extxyz file with ``--data``.
"""

from __future__ import annotations

import argparse

from aiida import orm
from aiida.engine import run_get_node

from aiida_les.data.dataset import LesDatasetData
from aiida_les.utils.resources import cpu_options, gpu_options
from workchains.train.base import LesTrainBaseWorkChain


def generate_dataset(n_frames: int = 8, seed: int = 0) -> LesDatasetData:
    """Return ``n_frames`` rattled NaCl cells (8 atoms) labelled with Lennard-Jones energies and forces."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(stdev=0.05, seed=seed + index)
        atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return LesDatasetData.from_ase(frames)


def example_train_model(code: orm.AbstractCode, protocol: str = 'fast', dataset=None, options=None):
    """Train on ``dataset`` (generated when None) with ``protocol``; return the finished workchain node.

    :param code: the ``les-train`` code (plugin ``les.train``).
    :param options: ``metadata.options`` for the job, e.g. from :func:`aiida_les.utils.resources.gpu_options`.
    """
    dataset = dataset if dataset is not None else generate_dataset()
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(
        code, dataset, protocol=protocol, options=options or cpu_options(max_wallclock_seconds=600)
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, f'training failed: {node.exit_status} {node.exit_message}'
    return node


def main() -> None:
    """Parse the command line, train and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-c', '--code', default='les-train@localhost', help='label of the les-train code')
    parser.add_argument('-p', '--protocol', default='fast', choices=['fast', 'balanced', 'stringent'])
    parser.add_argument('--data', help='extxyz file of labelled structures (default: generated NaCl/LJ data)')
    parser.add_argument('--gpu', action='store_true', help='request one GPU and train on CUDA')
    args = parser.parse_args()

    code = orm.load_code(args.code)
    dataset = LesDatasetData(args.data) if args.data else None
    options = gpu_options(num_gpus=1, max_wallclock_seconds=3600) if args.gpu else None
    node = example_train_model(code, args.protocol, dataset, options)
    metrics = node.outputs.metrics.get_dict()
    final = metrics['final'].get('valid') or metrics['final'].get('train')
    units = metrics.get('units', {})
    print(f'LesTrainBaseWorkChain<{node.pk}> finished; model LesModelData<{node.outputs.model.pk}>')
    for key in ('energy_per_atom_rmse', 'forces_rmse'):
        unit = units.get(key.rsplit('_', 1)[0], '')
        print(f'  validation {key}: {final.get(key, float("nan")):.3f} {unit}')


if __name__ == '__main__':
    main()
