"""Tests for :mod:`aiida_les.utils.resources`: scheduler options for CPU and GPU jobs."""

import pytest

from aiida_les.utils.resources import cpu_options, gpu_options


def test_cpu_options():
    options = cpu_options(max_wallclock_seconds=120, num_cores=4, queue_name='short')
    assert options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 4}
    assert options['environment_variables'] == {'OMP_NUM_THREADS': '4'}
    assert options['device'] == 'cpu'
    assert options['queue_name'] == 'short'


def test_gpu_options_slurm_and_custom_template():
    assert gpu_options(num_gpus=2)['custom_scheduler_commands'] == '#SBATCH --gres=gpu:2'
    pbs = gpu_options(gres_template='#PBS -l ngpus={num_gpus}')
    assert pbs['custom_scheduler_commands'] == '#PBS -l ngpus=1'
    assert pbs['device'] == 'cuda'


@pytest.mark.parametrize(
    ('factory', 'kwargs', 'match'),
    [(cpu_options, {'num_cores': 0}, 'num_cores'), (gpu_options, {'num_gpus': 0}, 'num_gpus')],
)
def test_invalid(factory, kwargs, match):
    with pytest.raises(ValueError, match=f'{match} must be >= 1, got 0'):
        factory(**kwargs)
