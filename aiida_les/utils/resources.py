"""Scheduler options for the ``les-*`` CalcJobs: CPU defaults and GPU requests."""

from __future__ import annotations

from typing import Any

__all__ = ('cpu_options', 'gpu_options')


def cpu_options(max_wallclock_seconds: int = 3600, num_cores: int = 1, **extra: Any) -> dict[str, Any]:
    """Return ``metadata.options`` for a single-process CPU job with ``num_cores`` threads.

    :param max_wallclock_seconds: walltime requested from the scheduler [s].
    :param num_cores: cores per process; ``OMP_NUM_THREADS`` is set to match.
    :param extra: further options, merged last.
    """
    if num_cores < 1:
        raise ValueError(f'num_cores must be >= 1, got {num_cores}.')
    options = {
        'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': num_cores},
        'max_wallclock_seconds': int(max_wallclock_seconds),
        'environment_variables': {'OMP_NUM_THREADS': str(num_cores)},
        'device': 'cpu',
    }
    options.update(extra)
    return options


def gpu_options(
    num_gpus: int = 1,
    max_wallclock_seconds: int = 3600,
    num_cores: int = 4,
    gres_template: str = '#SBATCH --gres=gpu:{num_gpus}',
    **extra: Any,
) -> dict[str, Any]:
    """Return ``metadata.options`` for a job on ``num_gpus`` GPUs with ``device='cuda'``.

    The GPU request goes into ``custom_scheduler_commands`` (SLURM ``--gres`` by default; pass another
    ``gres_template`` for PBS or a site-specific syntax, with ``{num_gpus}`` as placeholder).

    :param num_gpus: GPUs to request (the programs use one; a committee trains its members one after another).
    :param max_wallclock_seconds: walltime requested from the scheduler [s].
    :param num_cores: CPU cores for data loading and neighbour lists.
    :param extra: further options, merged last.
    """
    if num_gpus < 1:
        raise ValueError(f'num_gpus must be >= 1, got {num_gpus}.')
    options = cpu_options(max_wallclock_seconds, num_cores)
    options['device'] = 'cuda'
    options['custom_scheduler_commands'] = gres_template.format(num_gpus=num_gpus)
    options.update(extra)
    return options
