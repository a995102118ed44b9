"""Fixtures for the ``cluster`` tests: they drive the production profile (PostgreSQL + RabbitMQ + daemon + SLURM) that
``.ci/cluster/up.sh`` starts, through ``driver.py`` subprocesses, and fail with a clear message when it is not up.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = pathlib.Path(sys.executable).parent
PROFILE = os.environ.get('LES_PROFILE', 'les-prod')


class Cluster:
    """Handle on the production stack: submit, query, and start/stop its daemon, broker and SLURM jobs."""

    def __init__(self):
        self.env = {
            **os.environ,
            'AIIDA_PATH': os.environ.get('LES_CLUSTER_AIIDA_PATH', str(REPO / '.aiida')),
            'PATH': f'{BIN}:{os.environ["PATH"]}',
        }
        self.profile = PROFILE

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command with the stack's environment; raise with its output when ``check`` and it fails."""
        completed = subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)
        if check and completed.returncode != 0:
            raise RuntimeError(
                f'`{" ".join(args)}` exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}'
            )
        return completed

    def driver(self, *args: str) -> dict:
        """Run ``driver.py`` on the profile and return its JSON answer."""
        completed = self.run(str(BIN / 'python'), str(HERE / 'driver.py'), '--profile', self.profile, *args)
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def verdi(self, *args: str, timeout: float = 120) -> str:
        """Run ``verdi -p <profile> ...`` and return its output."""
        return self.run(str(BIN / 'verdi'), '-p', self.profile, *args, timeout=timeout).stdout

    def submit_train(
        self,
        partition: str = 'cpu',
        sleep: float = 0.0,
        hold: bool = False,
        epochs: int = 0,
        max_walltime: float = 0,
        gpus: int = 0,
    ) -> int:
        """Submit the fast training workchain to the daemon (options as in ``driver.submit_train``); return its pk."""
        args = ['submit-train', '--partition', partition, '--sleep', str(sleep)]
        args += ['--epochs', str(epochs), '--max-walltime', str(max_walltime), '--gpus', str(gpus)]
        return self.driver(*args, *(['--hold'] if hold else []))['pk']

    def state(self, pk: int) -> dict:
        """Return the workchain's state record (see ``driver.state``)."""
        return self.driver('state', str(pk))

    def wait(self, pk: int, predicate, timeout: float, what: str, interval: float = 2.0) -> dict:
        """Poll ``state(pk)`` until ``predicate(state)`` holds; fail after ``timeout`` s naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.state(pk)
            if predicate(record):
                return record
            if time.monotonic() > deadline:
                pytest.fail(f'{what}: not reached within {timeout} s; last state {record}')
            time.sleep(interval)

    def wait_terminated(self, pk: int, timeout: float = 600) -> dict:
        """Wait until the workchain is finished, excepted or killed."""
        return self.wait(pk, lambda r: r['process_state'] in ('finished', 'excepted', 'killed'), timeout, 'terminated')

    def squeue_state(self, job_id: str) -> str:
        """Return the SLURM state of ``job_id`` (``PENDING``, ``RUNNING``...) or '' once it left the queue."""
        completed = self.run('squeue', '-h', '-j', str(job_id), '-o', '%T', check=False)
        return completed.stdout.strip() if completed.returncode == 0 else ''

    def wait_job_gone(self, job_id: str, timeout: float = 300) -> None:
        """Wait until ``job_id`` has left the SLURM queue (finished)."""
        deadline = time.monotonic() + timeout
        while self.squeue_state(job_id):
            if time.monotonic() > deadline:
                pytest.fail(f'SLURM job {job_id} still in the queue after {timeout} s')
            time.sleep(1.0)


@pytest.fixture(scope='session')
def cluster() -> Cluster:
    """Return the stack handle; fail (not skip) when SLURM or the profile's daemon is not running."""
    if shutil.which('sbatch') is None:
        pytest.fail('`sbatch` not found: start the stack with `make cluster-test` (or .ci/cluster/up.sh) first.')
    handle = Cluster()
    ping = handle.run('scontrol', 'ping', check=False)
    if ping.returncode != 0 or 'UP' not in ping.stdout:
        pytest.fail(f'slurmctld not answering (`scontrol ping`: {ping.stdout.strip()}); run .ci/cluster/services.sh.')
    status = handle.run(str(BIN / 'verdi'), '-p', handle.profile, 'daemon', 'status', check=False)
    if status.returncode != 0:
        pytest.fail(
            f'The daemon of profile `{handle.profile}` is not running; run .ci/cluster/profile.sh.\n{status.stdout}'
        )
    return handle
