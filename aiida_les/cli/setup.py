"""``aiida-les setup``: idempotent creation of a profile, the localhost computer and the codes aiida-les runs."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import click
from aiida.cmdline.utils import echo

from aiida_les.cli.root import cmd_root

# label -> (executable looked up on PATH, default CalcJob plugin, text prepended to the job script)
_MPI_ROOT = 'export OMPI_ALLOW_RUN_AS_ROOT=1\nexport OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\nexport OMP_NUM_THREADS=1'
CODES = {
    'les-train': ('les-train', 'les.train', ''),
    'les-md': ('les-md', 'les.md', ''),
    'les-eval': ('les-eval', 'les.evaluate', ''),
    'cp2k': ('les-cp2k', 'les.cp2k', _MPI_ROOT),
    'ase-label': ('les-ase-label', 'les.ase_label', ''),
}


# scheduler -> (aiida scheduler plugin, default computer label)
SCHEDULERS = {'direct': ('core.direct', 'localhost'), 'slurm': ('core.slurm', 'slurm')}


@cmd_root.command('setup')
@click.option('--profile', 'profile_name', default='les', show_default=True, help='Profile to use; created if missing.')
@click.option(
    '--computer', 'computer_label', default=None, help='Computer for the codes [default: localhost, or slurm].'
)
@click.option(
    '--scheduler',
    type=click.Choice(sorted(SCHEDULERS)),
    default='direct',
    show_default=True,
    help='`direct`: run jobs as local processes; `slurm`: submit them with sbatch on this host (core.slurm).',
)
@click.option('--mpiprocs', type=int, default=None, help='Default MPI processes per machine [default: CPU count].')
def cmd_setup(profile_name: str, computer_label: str | None, scheduler: str, mpiprocs: int | None):
    """Create (or reuse) a profile, the computer and the les-train/les-md/les-eval/cp2k/ase-label codes.

    Safe to run again: existing nodes are reused; a code whose executable moved is relabelled and replaced.
    A new profile uses SQLite and the built-in ZeroMQ broker, so no services are needed; its configuration lives in
    ``$AIIDA_PATH`` (the Makefile points it inside the checkout). With ``--scheduler slurm`` the computer (label
    ``slurm`` unless ``--computer`` is given) uses the local transport and ``core.slurm``: jobs go through ``sbatch``
    on this host, so the SLURM controller must be reachable from here. Partitions, walltimes and GPUs are per job
    (``metadata.options``; see ``aiida_les.utils.resources``).
    """
    from aiida import load_profile
    from aiida.manage.configuration import get_config, reset_config

    if profile_name not in get_config(create=True).profile_names:
        echo.echo_report(f'Creating profile `{profile_name}` (SQLite + ZeroMQ broker) in {get_config().dirpath}')
        _run_verdi('presto', '--profile-name', profile_name, '--use-zeromq')
        reset_config()  # the profile was written by another process
    profile = load_profile(profile_name, allow_switch=True)
    echo.echo_report(f'Profile `{profile.name}` loaded (storage {profile.storage_backend}).')
    scheduler_type, default_label = SCHEDULERS[scheduler]
    computer = _ensure_computer(computer_label or default_label, mpiprocs or os.cpu_count() or 1, scheduler_type)
    codes = [_ensure_code(label, *spec, computer) for label, spec in CODES.items()]
    registered = ', '.join(code.full_label for code in codes if code is not None)
    echo.echo_success(f'Profile `{profile.name}` ready on computer `{computer.label}`; codes: {registered or "none"}.')


def _run_verdi(*args: str) -> None:
    verdi = shutil.which('verdi') or str(pathlib.Path(sys.executable).parent / 'verdi')
    completed = subprocess.run([verdi, *args], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        echo.echo_critical(f'`verdi {" ".join(args)}` failed:\n{completed.stdout}\n{completed.stderr}')


def _ensure_computer(label: str, mpiprocs: int, scheduler_type: str = 'core.direct'):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
    except NotExistent:
        if scheduler_type == 'core.direct' and label != 'localhost':
            echo.echo_critical(f'Computer `{label}` does not exist; set it up with `verdi computer setup` first.')
        if scheduler_type == 'core.slurm' and shutil.which('sbatch') is None:
            echo.echo_critical('`--scheduler slurm` needs `sbatch` on PATH (SLURM client tools); none found.')
        from aiida.manage.configuration import get_config

        workdir = pathlib.Path(get_config().dirpath) / 'scratch'
        computer = orm.Computer(
            label=label,
            hostname='localhost',
            description=f'aiida-les: this host, jobs through {scheduler_type}',
            transport_type='core.local',
            scheduler_type=scheduler_type,
            workdir=str(workdir),
        ).store()
        echo.echo_report(f'Created computer `{label}` (core.local, {scheduler_type}, workdir {workdir}).')
    if computer.scheduler_type != scheduler_type:
        echo.echo_critical(
            f'Computer `{label}` uses scheduler `{computer.scheduler_type}`, not `{scheduler_type}`; '
            'pick another --computer label.'
        )
    if not computer.is_configured:
        computer.configure(safe_interval=0)
    if computer.transport_type == 'core.local':
        # squeue is cheap on a local controller; a shared cluster wants a longer interval (verdi computer configure).
        computer.set_minimum_job_poll_interval(1 if scheduler_type == 'core.direct' else 2)
        computer.set_default_mpiprocs_per_machine(mpiprocs)
    return computer


def _ensure_code(label: str, executable: str, plugin: str, prepend: str, computer):
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    # The programs live next to this Python when the venv is not on PATH.
    filepath = shutil.which(executable) or shutil.which(executable, path=str(pathlib.Path(sys.executable).parent))
    if filepath is None:
        echo.echo_warning(f'`{executable}` is not on PATH: code `{label}` not registered.')
        return None
    try:
        code = orm.load_code(f'{label}@{computer.label}')
    except (NotExistent, MultipleObjectsError):
        code = None
    if code is not None:
        if str(code.filepath_executable) == filepath and code.default_calc_job_plugin == plugin:
            echo.echo_report(f'Code `{code.full_label}` exists (pk {code.pk}).')
            return code
        code.label = f'{label}-old-{code.pk}'
        echo.echo_report(f'Code `{label}` pointed to {code.filepath_executable}: relabelled `{code.label}`.')
    code = orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=filepath,
        default_calc_job_plugin=plugin,
        prepend_text=prepend,
        description=f'aiida-les: {executable} ({plugin})',
    ).store()
    echo.echo_report(f'Created code `{code.full_label}` -> {filepath} (pk {code.pk}).')
    return code
