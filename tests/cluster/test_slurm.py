"""Production stack tests: real ``les.train`` jobs through ``sbatch``, submitted to the daemon of the PostgreSQL +
RabbitMQ profile, with the daemon and the broker restarted while jobs are queued or running.

Run with ``make cluster-test`` (starts the stack, then ``pytest -m cluster -s``); the timings are printed.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

# The program's own time budget per training job in the walltime test [s]. Sized for this 2-core machine: unloaded,
# 20 epochs of the fast protocol fit in 20 s (so 30 epochs need 2-4 jobs of 10 s); on a heavily loaded machine
# (load 7) one job of 8 s made about one optimiser step, and 30 epochs would exceed the 20 restarts allowed.
WALLTIME_S = 10.0


def _finished_ok_single_job(record: dict) -> dict:
    """Assert the workchain finished OK with one CalcJob that went through sbatch; return that CalcJob's record."""
    assert record['is_finished_ok'], record
    assert len(record['calcs']) == 1, f'expected one job (nothing recomputed), got {record["calcs"]}'
    calc = record['calcs'][0]
    assert calc['exit_status'] == 0, calc
    assert calc['uses_sbatch'], 'the job script has no #SBATCH lines: not submitted through SLURM'
    assert calc['job_id'], calc
    assert calc['job_id'].isdigit(), calc
    assert {'model', 'metrics', 'learning_curve'} <= set(record['outputs']), record['outputs']
    for item in record['calcs']:
        labels = item['output_labels']
        assert len(labels) == len(set(labels)), f'duplicate outputs (process ran twice): {labels}'
    return calc


def test_train_through_sbatch_on_gpu_partition(cluster):
    """The fast training runs as a SLURM job in the `gpu` partition, via the daemon, and finishes OK."""
    started = time.monotonic()
    pk = cluster.submit_train(partition='gpu')
    record = cluster.wait_terminated(pk, timeout=600)
    calc = _finished_ok_single_job(record)
    assert calc['partition'] == 'gpu'
    print(f'\ncluster: les.train.base<{pk}> via sbatch job {calc["job_id"]}: {time.monotonic() - started:.1f} s')


def test_daemon_stopped_while_jobs_queued_and_running(cluster):
    """Stop the daemon with one job PENDING (held) and one RUNNING; both jobs end while it is down; restart it.

    Expected: both workchains finish OK with their original job (same SLURM id, one CalcJob each): nothing is
    resubmitted, nothing lost.
    """
    started = time.monotonic()
    queued = cluster.submit_train(hold=True)
    running = cluster.submit_train(sleep=20)
    with_scheduler = lambda r: bool(r['calcs']) and r['calcs'][0]['job_id'] is not None  # noqa: E731
    job_queued = cluster.wait(queued, with_scheduler, 300, 'held job submitted')['calcs'][0]['job_id']
    job_running = cluster.wait(running, with_scheduler, 300, 'job submitted')['calcs'][0]['job_id']
    deadline = time.monotonic() + 120
    while cluster.squeue_state(job_running) != 'RUNNING':
        assert time.monotonic() < deadline, f'job {job_running} never started: {cluster.squeue_state(job_running)}'
        time.sleep(0.5)
    assert cluster.squeue_state(job_queued) == 'PENDING'

    cluster.verdi('daemon', 'stop', '--timeout', '60')
    stopped = time.monotonic()
    try:
        cluster.run('scontrol', 'release', job_queued)
        cluster.wait_job_gone(job_running)
        cluster.wait_job_gone(job_queued)
        for pk in (queued, running):
            assert cluster.state(pk)['process_state'] == 'waiting', 'the workchain moved on while the daemon was down'
        down_for = time.monotonic() - stopped
    finally:
        cluster.run('scontrol', 'release', job_queued, check=False)
        cluster.verdi('daemon', 'start', '--timeout', '60')
    restarted = time.monotonic()

    records = [cluster.wait_terminated(pk, timeout=600) for pk in (queued, running)]
    for record, job_id in zip(records, (job_queued, job_running), strict=True):
        calc = _finished_ok_single_job(record)
        assert calc['job_id'] == job_id, f'job resubmitted: {calc["job_id"]} != {job_id}'
    print(
        f'\ncluster: daemon down {down_for:.1f} s while jobs {job_queued} (held, released) and {job_running} '
        f'(running) finished; both workchains done {time.monotonic() - restarted:.1f} s after restart, '
        f'{time.monotonic() - started:.1f} s in all'
    )


def _broker_restart(cluster, stop_daemon_first: bool) -> None:
    """Restart RabbitMQ while a job runs, with the daemon stopped around it or left running (then restarted)."""
    started = time.monotonic()
    pk = cluster.submit_train(sleep=20)
    with_scheduler = lambda r: bool(r['calcs']) and r['calcs'][0]['job_id'] is not None  # noqa: E731
    job_id = cluster.wait(pk, with_scheduler, 300, 'job submitted')['calcs'][0]['job_id']
    if stop_daemon_first:
        cluster.verdi('daemon', 'stop', '--timeout', '60')
    try:
        cluster.run('service', 'rabbitmq-server', 'restart', timeout=180)
        broker_back = time.monotonic()
        assert cluster.run('rabbitmqctl', '-q', 'status', check=False).returncode == 0
        if not stop_daemon_first:
            cluster.verdi('daemon', 'stop', '--timeout', '60')
            # Tasks lost with the broker's queues are recreated from the database (needs the daemon stopped).
            cluster.verdi('process', 'repair')
    finally:
        cluster.verdi('daemon', 'start', '--timeout', '60')
    record = cluster.wait_terminated(pk, timeout=600)
    calc = _finished_ok_single_job(record)
    assert calc['job_id'] == job_id
    print(
        f'\ncluster: broker restarted ({"daemon stopped first" if stop_daemon_first else "daemon running"}) while '
        f'job {job_id} ran; workchain finished {time.monotonic() - broker_back:.1f} s after the broker was back, '
        f'{time.monotonic() - started:.1f} s in all'
    )


def test_broker_restarted_with_daemon_stopped(cluster):
    """Runbook for a broker restart (docs/production.md): daemon stop, broker restart, daemon start, while the job
    runs. The workchain finishes OK with its one job, every output attached once.
    """
    _broker_restart(cluster, stop_daemon_first=True)


@pytest.mark.xfail(
    strict=False,
    reason='aiida-core #1748: after a broker connection loss RabbitMQ requeues the tasks to other workers while the '
    'first ones keep running the same processes; measured here: a CalcJob parsed twice, its workchain excepted',
)
def test_broker_restarted_under_running_daemon(cluster):
    """Unplanned broker restart under a running daemon, then the recovery runbook: daemon stop, ``verdi process
    repair`` (recreates tasks the broker lost; without it one run stayed ``Waiting`` with no worker for minutes),
    daemon start.
    """
    _broker_restart(cluster, stop_daemon_first=False)


def test_training_over_walltime_resumes_from_checkpoint(cluster):
    """A training job whose time budget runs out checkpoints and exits 400; the workchain resumes it from the
    checkpoint in the job's remote folder, in a new SLURM job, until all epochs are done.
    """
    started = time.monotonic()
    epochs = 30
    pk = cluster.submit_train(epochs=epochs, max_walltime=WALLTIME_S)
    record = cluster.wait_terminated(pk, timeout=800)
    assert record['is_finished_ok'], record
    calcs = record['calcs']
    assert len(calcs) >= 2, f'the first job finished inside {WALLTIME_S} s: nothing to resume ({calcs})'
    for previous, resumed in zip(calcs[:-1], calcs[1:], strict=True):
        assert previous['exit_status'] == 400, previous
        assert resumed['parent_folder'] == previous['remote_folder'], 'not resumed from the stopped run'
        assert resumed['job_id'] != previous['job_id']
    assert calcs[-1]['exit_status'] == 0
    assert all(calc['uses_sbatch'] for calc in calcs)
    assert calcs[-1]['epochs_trained'] == epochs, calcs[-1]
    print(
        f'\ncluster: {epochs} epochs with a {WALLTIME_S} s budget per job: {len(calcs)} SLURM jobs '
        f'({", ".join(str(calc["epochs_trained"]) for calc in calcs)} epochs recorded), '
        f'{time.monotonic() - started:.1f} s in all'
    )
