"""Custodian job and error handlers for CP2K labelling runs, bound by the label-consistency policy.

The handlers work on the nested-dictionary input (:mod:`aiida_les.labelling.cp2k_input`) held by a shared
:class:`Cp2kInputState`; every proposed correction is checked with
:func:`~aiida_les.labelling.cp2k_input.changed_computed_settings` and refused when it would change *what* is
computed (functional, basis, cutoff, smearing, dispersion, structure, charge...). Only how the SCF converges may
change: more iterations, restart from the wavefunction, mixing, OT minimiser and step.
This module must not import aiida (it runs inside the job).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pathlib
import subprocess
import time

from custodian.custodian import ErrorHandler, Job

from .cp2k_input import changed_computed_settings, recursive_merge, render_cp2k_input
from .cp2k_output import parse_cp2k_output

__all__ = ('DEFAULT_LADDER_DIAGONALIZATION', 'DEFAULT_LADDER_OT', 'Cp2kInputState', 'Cp2kJob', 'ScfHandler')

LOGGER = logging.getLogger(__name__)

_SCF = ('FORCE_EVAL', 'DFT', 'SCF')


def _scf(update: dict) -> dict:
    return {'FORCE_EVAL': {'DFT': {'SCF': update}}}


#: Corrections tried in order for diagonalisation SCF (xTB, metals): restart, more steps, gentler Broyden mixing.
DEFAULT_LADDER_DIAGONALIZATION: tuple[dict, ...] = (
    {'name': 'restart_more_iterations', 'restart': True, 'set': _scf({'MAX_SCF': 200})},
    {
        'name': 'broyden_mixing',
        'restart': True,
        'set': _scf({'MAX_SCF': 300, 'MIXING': {'METHOD': 'BROYDEN_MIXING', 'ALPHA': 0.1, 'NBUFFER': 8}}),
    },
    {'name': 'smaller_mixing_step', 'restart': True, 'set': _scf({'MAX_SCF': 400, 'MIXING': {'ALPHA': 0.03}})},
)
#: Corrections tried in order for OT SCF: restart with more outer loops, CG minimiser, smaller step.
DEFAULT_LADDER_OT: tuple[dict, ...] = (
    {'name': 'restart_more_iterations', 'restart': True, 'set': _scf({'MAX_SCF': 100, 'OUTER_SCF': {'MAX_SCF': 20}})},
    {'name': 'ot_cg_minimizer', 'restart': True, 'set': _scf({'OT': {'MINIMIZER': 'CG', 'LINESEARCH': '3PNT'}})},
    {'name': 'ot_smaller_step', 'restart': True, 'set': _scf({'OT': {'STEPSIZE': 0.05}})},
)


def _flat(tree: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in tree.items():
        path = f'{prefix}/{key}' if prefix else key
        if isinstance(value, dict):
            flat.update(_flat(value, path))
        else:
            flat[path] = value
    return flat


class Cp2kInputState:
    """The current nested CP2K input, shared by the job (which renders it) and the handlers (which correct it).

    :param sections: the nested input written by the CalcJob.
    :param input_file: file name CP2K reads (rewritten before every attempt).
    """

    def __init__(self, sections: dict, input_file: str = 'aiida.inp'):
        self.initial = copy.deepcopy(sections)
        self.sections = copy.deepcopy(sections)
        self.input_file = input_file
        self.applied: list[dict] = []
        self.refused: list[dict] = []

    @property
    def project(self) -> str:
        """CP2K project name (prefix of the wavefunction restart file)."""
        return str(self.sections.get('GLOBAL', {}).get('PROJECT', 'aiida'))

    def write(self, directory: str | os.PathLike) -> None:
        """Render the current input into ``directory``."""
        pathlib.Path(directory, self.input_file).write_text(render_cp2k_input(self.sections))

    def propose(self, name: str, update: dict) -> bool:
        """Apply ``update`` unless it changes what is computed; return True if applied, False if refused.

        A refused correction is recorded with the paths it would have changed; the input stays untouched.
        """
        candidate = recursive_merge(self.sections, update)
        changed = changed_computed_settings(self.initial, candidate)
        if changed:
            LOGGER.warning('Refused correction %s: it would change computed settings %s', name, changed)
            self.refused.append({'name': name, 'changed_computed_settings': changed})
            return False
        before, after = _flat(self.sections), _flat(candidate)
        changes = {path: [before.get(path), after.get(path)] for path in sorted(set(before) | set(after))}
        changes = {path: pair for path, pair in changes.items() if pair[0] != pair[1]}
        self.sections = candidate
        self.applied.append({'name': name, 'changes': changes})
        return True


class Cp2kJob(Job):
    """Run CP2K on the current input of a :class:`Cp2kInputState`; stop only its own process on termination.

    :param cp2k_command: the full command, e.g. ``['mpirun', '-np', '2', 'cp2k.psmp']``; ``-i <input>`` is appended.
    :param input_file: CP2K input file name.
    :param output_file: file receiving CP2K's standard output.
    :param stderr_file: file receiving CP2K's standard error.
    """

    def __init__(self, cp2k_command, input_file='aiida.inp', output_file='aiida.out', stderr_file='cp2k.err'):
        self.cp2k_command = list(cp2k_command)
        self.input_file = input_file
        self.output_file = output_file
        self.stderr_file = stderr_file
        self.state: Cp2kInputState | None = None
        self.process: subprocess.Popen | None = None
        self.cp2k_seconds = 0.0
        self._started = 0.0

    def setup(self, directory='./'):
        """Nothing to prepare: the input is rendered at every :meth:`run`."""

    def run(self, directory='./'):
        """Render the current input and start CP2K; return the ``Popen`` custodian monitors."""
        self._account()
        self.state.write(directory)
        with (
            open(os.path.join(directory, self.output_file), 'w') as stdout,
            open(os.path.join(directory, self.stderr_file), 'w') as stderr,
        ):
            self._started = time.perf_counter()
            self.process = subprocess.Popen(
                [*self.cp2k_command, '-i', self.input_file], cwd=directory, stdout=stdout, stderr=stderr
            )
        return self.process

    def _account(self):
        if self.process is not None and self._started:
            self.cp2k_seconds += time.perf_counter() - self._started
            self._started = 0.0

    def postprocess(self, directory='./'):
        """Record the CP2K wall time of the last attempt."""
        self._account()

    def terminate(self, directory='./'):
        """Stop this job's own CP2K (or MPI launcher) process only; never ``killall``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ScfHandler(ErrorHandler):
    """Fix an unconverged SCF by walking a ladder of SCF-only corrections, each checked by the consistency policy.

    :param output_file: CP2K output file to inspect.
    :param ladder: list of ``{'name', 'set', 'restart'}`` corrections; ``set`` is merged into the input, ``restart``
        restarts from the last wavefunction when one exists. Defaults follow the SCF type (OT or diagonalisation).
    """

    is_monitor = False
    raises_runtime_error = True

    def __init__(self, output_file='aiida.out', ladder=None):
        self.output_file = output_file
        self.ladder = ladder
        self.state: Cp2kInputState | None = None
        self._next = 0

    def check(self, directory='./'):
        """Return True if the last SCF did not converge (CP2K completed but printed 'SCF run NOT converged')."""
        path = os.path.join(directory, self.output_file)
        if not os.path.isfile(path):
            return False
        parsed = parse_cp2k_output(pathlib.Path(path).read_text(errors='replace'))
        return False in parsed['scf_converged']

    def _ladder(self):
        if self.ladder is not None:
            return self.ladder
        uses_ot = 'OT' in self.state.sections['FORCE_EVAL']['DFT'].get('SCF', {})
        return DEFAULT_LADDER_OT if uses_ot else DEFAULT_LADDER_DIAGONALIZATION

    def correct(self, directory='./'):
        """Apply the next correction of the ladder that changes the input and passes the policy.

        :return: custodian's ``{'errors', 'actions'}``; ``actions`` is None when the ladder is exhausted or the next
            correction was refused, which makes custodian stop (non-recoverable).
        """
        ladder = self._ladder()
        while self._next < len(ladder):
            step = ladder[self._next]
            self._next += 1
            update = copy.deepcopy(step.get('set', {}))
            wfn = pathlib.Path(directory, f'{self.state.project}-RESTART.wfn')
            if step.get('restart') and wfn.is_file():
                update = recursive_merge(
                    update,
                    {'FORCE_EVAL': {'DFT': {'WFN_RESTART_FILE_NAME': wfn.name, 'SCF': {'SCF_GUESS': 'RESTART'}}}},
                )
            if recursive_merge(self.state.sections, update) == self.state.sections:
                continue
            if not self.state.propose(step['name'], update):
                return {'errors': ['SCF not converged'], 'actions': None, 'refused': step['name']}
            return {'errors': ['SCF not converged'], 'actions': [{'name': step['name'], 'set': update}]}
        return {'errors': ['SCF not converged'], 'actions': None}


class TimeBudgetHandler(ErrorHandler):
    """Monitor: stop CP2K when the job's time budget runs out (the CalcJob then reports out-of-walltime).

    :param deadline: ``time.time()`` after which the run is stopped.
    """

    is_monitor = True
    is_terminating = True
    raises_runtime_error = True

    def __init__(self, deadline=None):
        self.deadline = deadline
        self.exceeded = False

    def check(self, directory='./'):
        """Return True once the deadline has passed."""
        self.exceeded = self.deadline is not None and time.time() > self.deadline
        return self.exceeded

    def correct(self, directory='./'):
        """Nothing can be corrected in-job: report and stop."""
        return {'errors': ['Time budget exhausted'], 'actions': None}


def dump_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` as indented JSON."""
    pathlib.Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
