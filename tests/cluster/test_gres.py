"""The `gpu` partition for real: a ``les.train`` job with the protocol's GPU options gets the fake `gpu` GRES.

``.ci/cluster/services.sh`` gives the node ``Gres=gpu:2`` backed by /dev/fakegpu0-1 (no GPU). The job is submitted
through the daemon with :func:`aiida_les.utils.resources.gpu_options` (``#SBATCH --gres=gpu:2``, ``device: cuda``)
and records its GPU environment; torch here has no CUDA device, so the training itself stops with exit 440
(device unavailable) unless the host has real GPUs. What is checked is the scheduling: the gpu partition, the GRES
in ``scontrol show job`` and the devices SLURM hands the job.
"""

from __future__ import annotations

import pathlib
import time

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

GPUS = 2


def _show_job(cluster, job_id: str) -> tuple[str, list[str]]:
    """``scontrol show job -d`` and its lines about the partition and the GRES."""
    show = cluster.run('scontrol', 'show', 'job', '-d', job_id).stdout
    keys = ('TRES', 'Tres', 'GRES', 'Partition')
    return show, [line.strip() for line in show.splitlines() if any(key in line for key in keys)]


def test_train_job_is_allocated_the_gpu_gres(cluster):
    pk = cluster.submit_train(partition='gpu', gpus=GPUS, sleep=10)  # the sleep keeps the job RUNNING a while
    submitted = lambda r: bool(r['calcs']) and r['calcs'][0]['job_id'] is not None  # noqa: E731
    job_id = cluster.wait(pk, submitted, 300, 'job submitted')['calcs'][0]['job_id']
    deadline = time.monotonic() + 120
    while cluster.squeue_state(job_id) != 'RUNNING':
        assert time.monotonic() < deadline, f'job {job_id} not RUNNING within 120 s: {_show_job(cluster, job_id)[0]}'
        time.sleep(0.5)
    show, lines = _show_job(cluster, job_id)
    print(f'\ncluster: scontrol show job -d {job_id} (running):\n  ' + '\n  '.join(lines))
    assert 'Partition=gpu' in show
    # slurmctld 22.05 without slurmdbd keeps gres/gpu out of TRES=; the request and the allocated device indices:
    assert f'TresPerNode=gres:gpu:{GPUS}' in show
    assert f'JOB_GRES=gpu:{GPUS}' in show
    assert f'GRES=gpu:{GPUS}(IDX:0-{GPUS - 1})' in show

    record = cluster.wait_terminated(pk, timeout=600)
    calc = record['calcs'][0]
    assert calc['partition'] == 'gpu'
    assert calc['scheduler_commands'] == f'#SBATCH --gres=gpu:{GPUS}'
    env_file = pathlib.Path(calc['remote_workdir']) / 'gpu_env.txt'
    environment = dict(line.split('=', 1) for line in env_file.read_text().splitlines() if '=' in line)
    print(f'cluster: job environment: {environment}; calc exit status {calc["exit_status"]}')
    assert environment['SLURM_JOB_PARTITION'] == 'gpu'
    assert environment['CUDA_VISIBLE_DEVICES'].split(',') == [str(i) for i in range(GPUS)]
    assert environment['SLURM_JOB_GPUS'].split(',') == [str(i) for i in range(GPUS)]
    # the job ran les-train: it trained (a host with GPUs) or stopped at once on the missing CUDA device (440)
    assert calc['exit_status'] in (0, 440), calc
