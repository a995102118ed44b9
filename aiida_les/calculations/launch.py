"""Data-parallel ``les-train``: the number of processes asked for in the resources, and the ``torchrun`` launch line.

``metadata.options.resources`` with more than one MPI process per machine (``num_mpiprocs_per_machine``, or
``tot_num_mpiprocs`` over ``num_machines``) means that many training processes on the one machine: the job script's
command line becomes ``torchrun --standalone --nnodes 1 --nproc_per_node N --no-python <les-train> ...`` (one process
per GPU with ``device: cuda``; gloo on CPU). ``torchrun`` is taken from the directory of the code's executable (the
environment ``les-train`` is installed in, which holds torch and so ``torchrun``), or from ``PATH`` for a relative
executable. Several machines need ``srun torchrun --nnodes ...`` (docs/production.md) and are refused here.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

__all__ = ('check_processes', 'processes_per_machine', 'torchrun_line')


def processes_per_machine(resources: Mapping[str, Any]) -> int:
    """Training processes per machine from ``metadata.options.resources`` (1 when nothing says otherwise)."""
    per_machine = resources.get('num_mpiprocs_per_machine')
    if per_machine:
        return int(per_machine)
    total = resources.get('tot_num_mpiprocs')
    return max(int(total) // int(resources.get('num_machines') or 1), 1) if total else 1


def check_processes(resources: Mapping[str, Any], withmpi: bool, batch_size: int) -> str | None:
    """Why these resources cannot run ``les-train`` data-parallel (None when they can)."""
    processes = processes_per_machine(resources)
    if int(resources.get('num_machines') or 1) > 1:
        return (
            'les.train runs on one machine (torchrun --standalone); for several machines launch '
            '`srun torchrun --nnodes ...` yourself (docs/production.md)'
        )
    if processes > 1 and withmpi:
        return f'{processes} processes per machine are started by torchrun, not mpirun: set `withmpi` False'
    if batch_size % processes:
        return f'batch_size {batch_size} (the global batch) is not divisible by the {processes} training processes'
    return None


def torchrun_line(script: str, executable: str, processes: int) -> str:
    """``script`` (a job script) with its line running ``executable`` prefixed by the ``torchrun`` launcher.

    :raises ValueError: if no line, or more than one, starts with the executable.
    """
    path = pathlib.PurePosixPath(executable)
    torchrun = str(path.parent / 'torchrun') if path.is_absolute() else 'torchrun'
    launcher = f'{torchrun} --standalone --nnodes 1 --nproc_per_node {processes} --no-python'
    lines = script.splitlines(keepends=True)
    runs = [i for i, line in enumerate(lines) if line.lstrip('\'"').startswith(executable)]
    if len(runs) != 1:
        raise ValueError(f'expected one line running {executable} in the job script, found {len(runs)}')
    lines[runs[0]] = f'{launcher} {lines[runs[0]]}'
    return ''.join(lines)
