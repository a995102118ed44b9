"""Fault tests of ``les.label`` on the local stack: a profile made by ``aiida-les setup`` (SQLite + the built-in ZeroMQ
broker) with a running ``verdi daemon``, CP2K GFN1-xTB (the `fast` protocol) on small molecules.

Faults are injected into real jobs: the ``cp2k.psmp`` process of one running ``les.cp2k`` job is found through its
working directory, frozen (SIGSTOP) so the fault lands while CP2K is mid-run, then killed (SIGKILL) or has its
scratch files deleted under it. Each test asserts that the hit label is recomputed, that no other finished label is
recomputed, and that every label ends up in the dataset. The caching test kills a label run part-way, restarts it
from scratch with the profile's caching switched on, and counts cached and newly run ``les.cp2k`` jobs.

The profile lives in a temporary ``AIIDA_PATH``; the daemon is started and stopped by the module fixture.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil
import pytest
from aiida import orm
from aiida.engine import submit
from aiida.engine.processes import control
from ase.build import molecule

from aiida_les.calculations.cp2k import LesCp2kCalculation
from workchains.label.label import LesLabelWorkChain

BIN = pathlib.Path(sys.executable).parent
PROFILE = 'les-faults'
CP2K_CALC = 'aiida.calculations:les.cp2k'
#: Exit status of a les.cp2k job whose CP2K was killed mid-run (the output stops before its end): 312.
KILLED = LesCp2kCalculation.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE.status
#: Exit status of a les.cp2k job whose CP2K output vanished with its scratch files: 302.
FILES_LOST = LesCp2kCalculation.exit_codes.ERROR_OUTPUT_STDOUT_MISSING.status

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        shutil.which('cp2k.psmp') is None or not (BIN / 'aiida-les').exists(),
        reason='needs cp2k.psmp and the aiida-les program',
    ),
]


class LocalStack:
    """Handle on the temporary profile and its daemon: ``verdi`` commands, waiting, and finding CP2K processes."""

    def __init__(self, dirpath: pathlib.Path):
        self.dirpath = dirpath
        self.env = {**os.environ, 'AIIDA_PATH': str(dirpath / '.aiida'), 'PATH': f'{BIN}:{os.environ["PATH"]}'}

    def run(self, *args: str, timeout: float = 300) -> str:
        """Run a command in the profile's environment; fail the test with its output when it fails."""
        completed = subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)
        if completed.returncode != 0:
            pytest.fail(f'`{" ".join(args)}` exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}')
        return completed.stdout

    def verdi(self, *args: str) -> str:
        """Run ``verdi -p <profile> ...``."""
        return self.run(str(BIN / 'verdi'), '-p', PROFILE, *args)

    def restart_daemon(self) -> None:
        """Stop and start the daemon, waiting for each (``verdi daemon restart`` times out on a loaded machine)."""
        from aiida.manage import get_manager

        self.verdi('daemon', 'stop', '--timeout', '60')
        self.verdi('daemon', 'start', '--timeout', '60', '1')
        # The ZeroMQ broker restarts with the daemon at a new address: reconnect this process, or what it submits
        # next goes to the old broker and is never run.
        get_manager().reset_broker()
        get_manager().reset_runner()

    def daemon_log(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the daemon log, for failure messages."""
        logs = sorted((self.dirpath / '.aiida' / 'daemon' / 'log').glob('aiida-*.log'))
        return '\n'.join(logs[0].read_text(errors='replace').splitlines()[-lines:]) if logs else '(no daemon log)'

    @staticmethod
    def wait(predicate, timeout: float, what: str, interval: float = 0.2):
        """Poll ``predicate()`` until it returns something truthy, and return that; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f'{what}: not reached within {timeout} s')
            time.sleep(interval)

    def wait_terminated(self, node: orm.ProcessNode, timeout: float = 300) -> orm.ProcessNode:
        """Wait until ``node`` is terminated (finished, excepted or killed)."""
        deadline = time.monotonic() + timeout
        while not node.is_terminated:
            if time.monotonic() > deadline:
                pytest.fail(f'{node.process_label}<{node.pk}> not terminated within {timeout} s:\n{self.daemon_log()}')
            time.sleep(0.5)
        return node

    def frozen_cp2k(
        self, label: orm.WorkChainNode, index: int, timeout: float = 120
    ) -> tuple[orm.CalcJobNode, psutil.Process]:
        """Return the first ``les.cp2k`` job of structure ``index`` and its ``cp2k.psmp`` process, stopped (SIGSTOP).

        The process is the one whose working directory is the job's remote working directory, so only a process
        this test's daemon started is ever signalled.
        """
        calc = self.wait(
            lambda: next((c for c in cp2k_jobs(label, index) if c.get_remote_workdir()), None),
            timeout,
            f'les.cp2k job of structure {index} uploaded',
            interval=0.05,
        )
        workdir = calc.get_remote_workdir()

        def find():
            assert not calc.is_terminated, f'{calc.pk} finished before its CP2K process was caught'
            for process in psutil.process_iter(['name']):
                if process.info['name'] != 'cp2k.psmp':
                    continue
                try:
                    if process.cwd() == workdir:
                        process.send_signal(signal.SIGSTOP)
                        return process
                except psutil.Error:
                    continue
            return None

        return calc, self.wait(find, timeout, f'cp2k.psmp of job {calc.pk} running', interval=0.02)


@pytest.fixture(scope='module')
def local_stack(aiida_config_factory):
    """A profile made by ``aiida-les setup`` in a temporary ``AIIDA_PATH``, loaded here, with one daemon worker.

    The directory is our own, not pytest's ``tmp_path``: concurrent pytest sessions prune each other's old numbered
    temporary directories, which must not pull the profile from under a running daemon.
    """
    from aiida.manage.configuration import profile_context

    dirpath = pathlib.Path(tempfile.mkdtemp(prefix='les-faults-'))
    stack = LocalStack(dirpath)
    try:
        stack.run(str(BIN / 'aiida-les'), 'setup', '--profile', PROFILE)
        with aiida_config_factory(dirpath), profile_context(PROFILE, allow_switch=True):
            stack.verdi('daemon', 'start', '--timeout', '60', '1')
            try:
                yield stack
            finally:
                stack.verdi('daemon', 'stop', '--timeout', '60')
    finally:
        shutil.rmtree(dirpath, ignore_errors=True)


def _molecule(name: str) -> orm.StructureData:
    """A small molecule in a 4 Å vacuum box, non-periodic."""
    atoms = molecule(name)
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    return orm.StructureData(ase=atoms)


def _label_builder(names: list[str], overrides: dict | None = None):
    """The `fast` (CP2K GFN1-xTB) label workchain on fresh structure nodes, with the code ``aiida-les setup`` made."""
    code = orm.load_code('cp2k@localhost')
    return LesLabelWorkChain.get_builder_from_protocol(
        code, [_molecule(name) for name in names], 'fast', overrides=overrides
    )


def cp2k_jobs(label: orm.WorkChainNode, index: int | None = None) -> list[orm.CalcJobNode]:
    """Return the ``les.cp2k`` jobs under ``label`` (of structure ``index`` only, when given), oldest first."""
    jobs = []
    for link in label.base.links.get_outgoing(node_class=orm.WorkflowNode).all():
        if index is not None and link.link_label != f'label_{index:04d}':
            continue
        jobs += [n for n in link.node.called if n.process_type == CP2K_CALC]
    return sorted(jobs, key=lambda node: node.pk)


def _assert_every_label_in_dataset(label: orm.WorkChainNode, names: list[str]) -> None:
    """Every structure labelled once, in order, with finite energy and forces of the right shape."""
    assert label.is_finished_ok, (label.exit_status, label.exit_message)
    report = label.outputs.report.get_dict()
    assert report['n_labelled'] == len(names), report
    assert report['n_failed'] == 0, report['failures']
    frames = label.outputs.labelled.get_ase()
    assert [int(frame.info['source_index']) for frame in frames] == list(range(len(names)))
    for frame, name in zip(frames, names, strict=True):
        assert frame.get_chemical_formula() == molecule(name).get_chemical_formula()
        assert np.isfinite(frame.get_potential_energy())
        assert frame.get_forces().shape == (len(frame), 3)


def test_cp2k_killed_halfway_is_rerun(local_stack):
    """SIGKILL of a running cp2k.psmp: the job fails (312), les.cp2k.base runs it again, the label is in the dataset;
    the other structure's finished label is not recomputed.
    """
    names = ['H2O', 'NH3']
    label = submit(_label_builder(names))
    calc, process = local_stack.frozen_cp2k(label, 0)
    process.send_signal(signal.SIGKILL)
    local_stack.wait_terminated(label)

    _assert_every_label_in_dataset(label, names)
    hit, other = cp2k_jobs(label, 0), cp2k_jobs(label, 1)
    assert [job.exit_status for job in hit] == [KILLED, 0], 'the killed job must be rerun once'
    assert hit[0].pk == calc.pk
    assert hit[0].outputs.output_parameters['custodian_status'] == 'cp2k_failed'
    assert 'PROGRAM ENDED' not in hit[0].outputs.retrieved.base.repository.get_object_content('aiida.out')
    assert [job.exit_status for job in other] == [0], 'a finished label was recomputed'


@pytest.mark.parametrize('what', ['files', 'directory'])
def test_scratch_deleted_while_running(local_stack, what):
    """The files of a running job's working directory (or the directory itself) are deleted under a running CP2K:
    the job fails (302, output not retrieved), is run again, and nothing else is lost.
    """
    names = ['CH4', 'HF']
    label = submit(_label_builder(names))
    calc, process = local_stack.frozen_cp2k(label, 0)
    workdir = pathlib.Path(calc.get_remote_workdir())
    if what == 'directory':
        shutil.rmtree(workdir)
    else:
        for path in workdir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    process.send_signal(signal.SIGCONT)
    local_stack.wait_terminated(label)

    _assert_every_label_in_dataset(label, names)
    hit, other = cp2k_jobs(label, 0), cp2k_jobs(label, 1)
    assert [job.exit_status for job in hit] == [FILES_LOST, 0], 'the job that lost its files must be rerun once'
    assert [job.exit_status for job in other] == [0], 'a finished label was recomputed'


def test_restart_from_scratch_with_caching_reuses_finished_labels(local_stack):
    """A label run killed after two of three labels is restarted from scratch with the profile's caching on: every
    finished les.cp2k job comes from the cache (0 new runs for them), only the unfinished structures are computed.
    """
    names = ['CO', 'N2', 'HCN']
    first = submit(_label_builder(names, overrides={'max_concurrent': 1}))
    # Kill while the third job runs (one at a time: max_concurrent 1), as a user stopping a run part-way would.
    local_stack.wait(lambda: len(cp2k_jobs(first, 2)) == 1, 300, 'two labels finished, third started', interval=0.1)
    control.kill_processes([first], timeout=30)
    local_stack.wait_terminated(first, timeout=120)
    assert first.is_killed
    finished = {index: jobs[-1] for index in range(3) if (jobs := cp2k_jobs(first, index)) and jobs[-1].is_finished_ok}
    assert len(finished) >= 2

    local_stack.verdi('config', 'set', 'caching.enabled_for', 'aiida.calculations:les.cp2k')
    local_stack.restart_daemon()
    try:
        second = local_stack.wait_terminated(submit(_label_builder(names, overrides={'max_concurrent': 1})))
    finally:
        local_stack.verdi('config', 'unset', 'caching.enabled_for')
        local_stack.restart_daemon()

    _assert_every_label_in_dataset(second, names)
    jobs = {index: cp2k_jobs(second, index) for index in range(3)}
    assert all(len(runs) == 1 for runs in jobs.values()), jobs
    cached = {index for index, runs in jobs.items() if runs[0].base.caching.is_created_from_cache}
    newly_run = set(jobs) - cached
    print(
        f'\ncaching restart: {len(finished)} of 3 labels finished before the kill; rerun from scratch: '
        f'{len(cached)} les.cp2k cached, {len(newly_run)} newly run'
    )
    assert cached == set(finished), 'every finished DFT job must come from the cache, and only those'
    assert not newly_run & set(finished), 'a finished label was recomputed'
    for index in finished:
        assert jobs[index][0].base.caching.get_cache_source() == finished[index].uuid
        assert jobs[index][0].outputs.output_parameters['energy'] == finished[index].outputs.output_parameters['energy']
