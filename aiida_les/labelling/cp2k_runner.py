"""``les-cp2k``: run CP2K under custodian with label-consistent SCF corrections, inside the job.

Usage: ``les-cp2k [les_cp2k.json]``. The settings file is written by the ``les.cp2k`` CalcJob and holds:

- ``input`` (dict): the nested CP2K input (see :mod:`aiida_les.labelling.cp2k_input`);
- ``cp2k_command`` (list of str): the full CP2K command line, MPI launcher included, e.g.
  ``['mpirun', '-np', '2', 'cp2k.psmp']`` (the CalcJob builds it from the ``cp2k_executable`` and
  ``mpi_launcher`` options and the job resources); ``-i <input_file>`` is appended;
- ``input_file`` / ``output_file`` / ``stderr_file`` (str): file names (defaults ``aiida.inp``, ``aiida.out``,
  ``cp2k.err``);
- ``max_corrections`` (int): corrections custodian may apply before giving up (default 5);
- ``ladder`` (list of dict or null): SCF corrections, ``{'name', 'set', 'restart'}``, tried in order; null picks
  the default ladder for OT or diagonalisation (:mod:`aiida_les.labelling.cp2k_handlers`);
- ``time_budget`` (float or null): seconds after which CP2K is stopped (the CalcJob passes most of the walltime);
- ``bec`` (dict or null): ``{'displacement': h}`` (Å) to compute Born effective charges after the label converged,
  by central differences of the dipole in one extra CP2K run (:mod:`aiida_les.labelling.cp2k_bec`, which writes
  ``bec.json``).

The program writes the input file it runs (rewritten after each correction), CP2K's output and error files, and
``corrections.json``: ``status`` (``ok``, ``scf_not_converged``, ``correction_refused``, ``max_corrections``,
``time_budget_exceeded``, ``cp2k_failed``, ``bec_failed``), ``message``, ``attempts``, ``corrections`` (each applied
correction with the input paths it changed, old and new values), ``refused`` (each refused correction with the
computed settings it would have changed), ``cp2k_seconds`` (time spent in CP2K, Born charges included),
``runner_seconds`` (total) and, with ``bec``, ``bec_status`` and ``bec_message``. Exit status 0 when the final SCF
converged (and the Born charges, if asked for, were computed), 2 otherwise. This module must not import aiida.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sys
import time

from custodian import Custodian
from custodian.custodian import CustodianError, MaxCorrectionsError, MaxCorrectionsPerJobError, NonRecoverableError

from .cp2k_bec import run_bec
from .cp2k_handlers import Cp2kInputState, Cp2kJob, ScfHandler, TimeBudgetHandler, dump_json
from .cp2k_input import settings_sha1
from .cp2k_output import parse_cp2k_output

__all__ = ('main', 'run_cp2k', 'settings_sha1')

CORRECTIONS_FILE = 'corrections.json'
SETTINGS_FILE = 'les_cp2k.json'


def run_cp2k(settings: dict, directory: str | pathlib.Path = '.') -> dict:
    """Run CP2K under custodian in ``directory`` following ``settings``; write and return the corrections record."""
    started = time.perf_counter()
    directory = pathlib.Path(directory)
    input_file = settings.get('input_file', 'aiida.inp')
    output_file = settings.get('output_file', 'aiida.out')
    state = Cp2kInputState(settings['input'], input_file=input_file)
    job = Cp2kJob(settings['cp2k_command'], input_file, output_file, settings.get('stderr_file', 'cp2k.err'))
    job.state = state
    scf = ScfHandler(output_file=output_file, ladder=settings.get('ladder'))
    scf.state = state
    budget = settings.get('time_budget')
    timer = TimeBudgetHandler(deadline=time.time() + float(budget) if budget else None)
    max_corrections = int(settings.get('max_corrections', 5))
    custodian = Custodian(
        handlers=[scf, timer],
        jobs=[job],
        max_errors=max(max_corrections, 1),
        polling_time_step=0.1,
        monitor_freq=20,
        terminate_on_nonzero_returncode=True,
        directory=str(directory),
    )
    status, message = 'ok', ''
    try:
        if max_corrections == 0:
            custodian.handlers = [timer]
        custodian.run()
    except NonRecoverableError as exception:
        if timer.exceeded:
            status = 'time_budget_exceeded'
        elif state.refused:
            status = 'correction_refused'
        else:
            status = 'scf_not_converged'
        message = str(exception)
    except (MaxCorrectionsError, MaxCorrectionsPerJobError) as exception:
        status, message = 'max_corrections', str(exception)
    except CustodianError as exception:
        status, message = 'cp2k_failed', str(exception)
    job.postprocess()
    output = directory / output_file
    if status == 'ok':
        parsed = parse_cp2k_output(output.read_text(errors='replace')) if output.is_file() else {}
        if not parsed.get('completed'):
            status, message = 'cp2k_failed', 'CP2K did not reach the end of its output.'
        elif False in parsed.get('scf_converged', []):
            status, message = 'scf_not_converged', 'The SCF did not converge and no correction was allowed.'
    bec = None
    if status == 'ok' and settings.get('bec'):
        bec = run_bec(
            state.sections,
            settings['cp2k_command'],
            float(settings['bec']['displacement']),
            directory,
            deadline=timer.deadline,
        )
        if bec['status'] == 'time_budget_exceeded':
            status, message = bec['status'], bec['message']
        elif bec['status'] != 'ok':
            status, message = 'bec_failed', f'Born effective charges: {bec["status"]}: {bec["message"]}'
    record = {
        'status': status,
        'message': message,
        'attempts': len(state.applied) + 1,
        'corrections': state.applied,
        'refused': state.refused,
        'computed_settings_sha1_initial': settings_sha1(state.initial),
        'computed_settings_sha1_final': settings_sha1(state.sections),
        'cp2k_command': settings['cp2k_command'],
        'cp2k_seconds': round(job.cp2k_seconds + (bec['cp2k_seconds'] if bec else 0.0), 3),
        'runner_seconds': round(time.perf_counter() - started, 3),
    }
    if bec is not None:
        record['bec_status'], record['bec_message'] = bec['status'], bec['message']
    dump_json(directory / CORRECTIONS_FILE, record)
    return record


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-cp2k``: read the settings file, run, write ``corrections.json``; 0 on success."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    path = pathlib.Path(argv[0] if argv else SETTINGS_FILE)
    try:
        settings = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exception:
        print(f'les-cp2k: cannot read settings file {path}: {exception}', file=sys.stderr)  # noqa: T201
        return 3
    record = run_cp2k(settings, path.parent)
    return 0 if record['status'] == 'ok' else 2


if __name__ == '__main__':
    sys.exit(main())
