"""Fixtures for the training workchain tests: a small labelled dataset and fake finished ``les.train`` jobs."""

import pytest


@pytest.fixture
def generate_dataset():
    """Return a factory for a LesDatasetData of rattled NaCl cells labelled with Lennard-Jones (eV, eV/Å)."""

    def factory(n_frames: int = 4, seed: int = 0):
        from ase.build import bulk
        from ase.calculators.lj import LennardJones
        from ase.calculators.singlepoint import SinglePointCalculator

        from aiida_les.data.dataset import LesDatasetData

        frames = []
        for index in range(n_frames):
            atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
            atoms.rattle(stdev=0.05, seed=seed + index)
            atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
            results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
            atoms.calc = SinglePointCalculator(atoms, **results)
            frames.append(atoms)
        return LesDatasetData.from_ase(frames)

    return factory


@pytest.fixture
def generate_finished_calc(generate_calc_job_node, aiida_localhost):
    """Return a factory for a finished ``les.train`` CalcJobNode with a chosen exit status and output nodes."""

    def factory(exit_status: int, outputs: dict | None = None):
        from aiida import orm
        from aiida.common import LinkType
        from plumpy import ProcessState

        node = generate_calc_job_node('les.train')
        node.set_process_state(ProcessState.FINISHED)
        node.set_exit_status(exit_status)
        remote = orm.RemoteData(computer=aiida_localhost, remote_path='/tmp/les-train-job')
        remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='remote_folder')
        remote.store()
        for label, output in (outputs or {}).items():
            output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
            output.store()
        return node

    return factory
