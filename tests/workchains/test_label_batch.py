"""les.label in batches: 200 structures through batch jobs, a failure in a batch retried alone, the sliding window.

EMT (ase) is the labeller: cheap, and an independent reference, since every returned label is compared with EMT
evaluated here on the input cell, so a label attached to the wrong structure fails the test.
"""

import os
import shutil
import sys
import time

import numpy as np
import pytest
from aiida import orm
from aiida.engine import WorkChain, run_get_node, while_
from aiida.plugins import CalculationFactory
from ase.build import bulk
from ase.calculators.emt import EMT as EmtCalculator

from aiida_les.calculations.ase_label import LesAseLabelCalculation
from workchains.label.label import LesLabelWorkChain
from workchains.label.window import SlidingWindowMixin

LES_ASE_LABEL = shutil.which('les-ase-label') or shutil.which('les-ase-label', path=os.path.dirname(sys.executable))
EMT = {'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'}

needs_runner = pytest.mark.skipif(LES_ASE_LABEL is None, reason='needs les-ase-label')


@pytest.fixture
def ase_code(aiida_code_installed):
    return aiida_code_installed(
        label='les-ase-label-batch', default_calc_job_plugin='les.ase_label', filepath_executable=LES_ASE_LABEL
    )


def _cells(n: int) -> list:
    """``n`` rattled 4-atom fcc Cu, Al and CuAl cells with distinct lattice constants (Å)."""
    rng = np.random.default_rng(7)
    cells = []
    for index in range(n):
        symbol, a = [('Cu', 3.61), ('Al', 4.05), ('Cu', 3.80)][index % 3]
        atoms = bulk(symbol, 'fcc', a=a * (1 + 0.02 * rng.uniform(-1, 1)), cubic=True)
        if index % 3 == 2:
            atoms.symbols[[1, 2]] = 'Al'
        atoms.rattle(0.05, seed=index)
        cells.append(atoms)
    return cells


def _jobs(node) -> list:
    return [link.node for link in node.base.links.get_outgoing(node_class=orm.CalcJobNode).all()]


@pytest.mark.slow
@needs_runner
@pytest.mark.timeout(900)
def test_label_200_structures_in_batches(ase_code):
    """200 structures, 50 per job, 4 jobs at a time: 4 jobs, every structure labelled once with its own EMT labels."""
    cells = _cells(200)
    builder = LesLabelWorkChain.get_builder_from_protocol(
        ase_code,
        [orm.StructureData(ase=atoms) for atoms in cells],
        labeller='ase',
        calculator=EMT,
        overrides={'max_concurrent': 4, 'batch_size': 50},
    )
    started = time.perf_counter()
    results, node = run_get_node(builder)
    elapsed = time.perf_counter() - started
    assert node.is_finished_ok, node.exit_message
    report = results['report'].get_dict()
    assert (report['n_requested'], report['n_labelled'], report['n_failed']) == (200, 200, 0)
    assert report['n_jobs'] == 4
    assert report['retried_alone'] == []

    jobs = _jobs(node)
    assert len(jobs) == 4
    assert all(job.is_finished_ok and len(job.inputs.structures) == 50 for job in jobs)
    # Each input structure went into exactly one job, under its frame key.
    inputs = {job.uuid: {key: node.uuid for key, node in job.inputs.structures.items()} for job in jobs}
    assert sorted(key for keys in inputs.values() for key in keys) == [f'frame_{index:04d}' for index in range(200)]

    frames = results['labelled'].get_ase()
    assert sorted(int(frame.info['source_index']) for frame in frames) == list(range(200))
    for frame in frames:
        index = int(frame.info['source_index'])
        # Traceable: the frame names its job, and that job's input under the frame's key is the structure it names.
        assert inputs[frame.info['label_job_uuid']][f'frame_{index:04d}'] == frame.info['structure_uuid']
        reference = cells[index].copy()
        reference.calc = EmtCalculator()
        np.testing.assert_allclose(frame.positions, reference.positions, atol=1e-6)
        np.testing.assert_allclose(frame.get_potential_energy(), reference.get_potential_energy(), atol=1e-6)
        np.testing.assert_allclose(frame.get_forces(), reference.get_forces(), atol=1e-6)
    print(f'\nles.label 200 structures, batch_size 50, max_concurrent 4: {elapsed:.1f} s wall')


@needs_runner
def test_failure_in_batch_retried_alone(ase_code):
    """Na (no EMT parameters) fails inside a batch of five: the four others keep their labels from the batch job,
    Na alone is retried in a job of its own (the same StructureData), fails again and is excluded with its reason.
    """
    cells = _cells(5)
    cells[2] = bulk('Na', 'bcc', a=4.23, cubic=True)
    structures = [orm.StructureData(ase=atoms) for atoms in cells]
    builder = LesLabelWorkChain.get_builder_from_protocol(
        ase_code, structures, labeller='ase', calculator=EMT, overrides={'max_concurrent': 2, 'batch_size': 5}
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    report = results['report'].get_dict()
    assert (report['n_labelled'], report['n_failed'], report['n_jobs']) == (4, 1, 2)

    batch, retry = sorted(_jobs(node), key=lambda job: job.pk)
    assert batch.exit_status == LesAseLabelCalculation.exit_codes.ERROR_SOME_STRUCTURES_FAILED.status
    assert sorted(batch.outputs.labels) == ['frame_0000', 'frame_0001', 'frame_0003', 'frame_0004']
    failed = LesAseLabelCalculation.exit_codes.ERROR_CALCULATOR_FAILED.status
    assert batch.outputs.output_parameters['structures']['frame_0002']['exit_status'] == failed
    assert report['retried_alone'] == [{'index': 2, 'batch_pk': batch.pk, 'exit_status': failed}]
    # The retry holds the failed structure only: the very node the batch got.
    assert 'structures' not in retry.inputs
    assert retry.inputs.structure.uuid == structures[2].uuid == batch.inputs.structures['frame_0002'].uuid
    assert retry.exit_status == failed
    assert [(item['index'], item['pk']) for item in report['failures']] == [(2, retry.pk)]

    frames = results['labelled'].get_ase()
    assert [int(frame.info['source_index']) for frame in frames] == [0, 1, 3, 4]
    assert {frame.info['label_job_uuid'] for frame in frames} == {batch.uuid}


class WindowWorkChain(SlidingWindowMixin, WorkChain):
    """Run ``core.arithmetic.add`` jobs with given sleeps (s), at most ``window`` at once, refilled as they end."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode)
        spec.input('sleeps', valid_type=orm.List)
        spec.input('window', valid_type=orm.Int)
        spec.outline(cls.setup, while_(cls.should_continue)(cls.submit_jobs))

    def setup(self):
        self.ctx.queue = list(self.inputs.sleeps.get_list())
        self.ctx.running = []

    def should_continue(self):
        self.ctx.running = [pk for pk in self.ctx.running if not orm.load_node(pk).is_terminated]
        return bool(self.ctx.queue or self.ctx.running)

    def submit_jobs(self):
        add = CalculationFactory('core.arithmetic.add')
        while self.ctx.queue and len(self.ctx.running) < self.inputs.window.value:
            sleep = self.ctx.queue.pop(0)
            options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'sleep': sleep}
            node = self.submit(
                add, code=self.inputs.code, x=orm.Int(sleep), y=orm.Int(0), metadata={'options': options}
            )
            self.ctx.running.append(node.pk)
        return self.wait_for_any([orm.load_node(pk) for pk in self.ctx.running])


def test_sliding_window_refills_before_the_slow_job_ends(aiida_code_installed):
    """Window of 2, a 20 s job and two quick ones: the third starts when the second ends, while the first still runs.

    In waves of two, the third job would start only after the slow first one ended.
    """
    code = aiida_code_installed(
        label='bash-add', default_calc_job_plugin='core.arithmetic.add', filepath_executable='/bin/bash'
    )
    _, node = run_get_node(WindowWorkChain, code=code, sleeps=orm.List([20, 0, 0]), window=orm.Int(2))
    assert node.is_finished_ok, node.exit_status
    slow, quick, refill = sorted(_jobs(node), key=lambda job: job.pk)
    assert all(job.is_finished_ok for job in (slow, quick, refill))
    times = {
        name: (job.ctime, job.mtime)
        for name, job in zip(('slow', 'quick', 'refill'), (slow, quick, refill), strict=True)
    }
    assert quick.mtime <= refill.ctime < slow.mtime, times


def test_labeller_registry_has_the_built_ins():
    """`cp2k` and `ase` resolve to their labeller classes; an unknown name is refused with the known ones listed."""
    from workchains.label.labellers import AseLabeller, Cp2kLabeller, get_labeller

    assert get_labeller('cp2k') is Cp2kLabeller
    assert get_labeller('ase') is AseLabeller
    with pytest.raises(ValueError, match=r"Unknown labeller `qe`; expected one of \['ase', 'cp2k'\]"):
        get_labeller('qe')


def test_cp2k_refuses_batches(fixture_code, generate_workchain):
    """CP2K labels one structure per job (no FARMING batches yet): a batch_size above 1 is refused up front."""
    structures = [orm.StructureData(ase=atoms) for atoms in _cells(2)]
    builder = LesLabelWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k'), structures, 'fast', overrides={'batch_size': 2}
    )
    with pytest.raises(ValueError, match='`batch_size` must be 1, got 2'):
        generate_workchain('les.label', builder._inputs(prune=True))
