"""BaseLesParser: read the stdout/stderr of a ``les-*`` program and map its reported failure to an exit code.

The programs (``les_model/cli``) end a successful run with a line ``LES-<PROG> FINISHED ...`` on stdout and a
failed one with a single line ``les-<prog>: ERROR <NAME>: <message>`` on stderr, where ``<NAME>`` is a member of
:class:`les_model.cli.exit_codes.ExitCode`. A Python traceback on stderr without such a line is an unexpected
failure; neither line at all means the program was killed (by the scheduler, for instance).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing as t

from aiida.engine import ExitCode
from aiida.parsers import Parser

__all__ = ('BaseLesParser', 'ProgramReport', 'finite_or_none')

_RE_ERROR = re.compile(r'^les-[a-z]+: ERROR (?P<name>[A-Z_]+): (?P<message>.*)$', re.MULTILINE)
_RE_FINISHED = re.compile(r'^LES-[A-Z]+ FINISHED(?P<details>.*)$', re.MULTILINE)
_RE_USAGE = re.compile(r'^les-[a-z]+: error: (?P<message>.*)$', re.MULTILINE)  # argparse, exit status 2


def finite_or_none(value: t.Any) -> t.Any:
    """Return ``value`` with every NaN or infinite float replaced by None (AiiDA stores JSON, which has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): finite_or_none(sub) for key, sub in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(sub) for sub in value]
    return value


@dataclasses.dataclass
class ProgramReport:
    """What the program said about how it ended.

    :param finished: the success line was printed.
    :param error_name: the ``ExitCode`` name of the reported failure, or None.
    :param error_message: the message of the reported failure ('' when none).
    :param traceback: stderr holds a Python traceback.
    :param details: ``key=value`` pairs of the success line.
    """

    finished: bool = False
    error_name: str | None = None
    error_message: str = ''
    traceback: bool = False
    details: dict[str, str] = dataclasses.field(default_factory=dict)


class BaseLesParser(Parser):
    """Shared parsing steps; subclasses implement :meth:`parse_outputs` and extend :attr:`ERROR_MAP`."""

    #: ``ExitCode`` names of the program -> exit-code labels of the CalcJob.
    ERROR_MAP: t.ClassVar[dict[str, str]] = {
        'INVALID_CONFIG': 'ERROR_INVALID_CONFIG',
        'USAGE': 'ERROR_UNEXPECTED_FAILURE',
        'INPUT_FILE_ERROR': 'ERROR_INVALID_INPUT_DATA',
        'INCOMPATIBLE_MODEL': 'ERROR_INCOMPATIBLE_MODEL',
        'DEVICE_UNAVAILABLE': 'ERROR_DEVICE_UNAVAILABLE',
        'UNEXPECTED': 'ERROR_UNEXPECTED_FAILURE',
    }

    def parse(self, **kwargs) -> ExitCode | None:
        """Read stdout and stderr, let the subclass attach outputs, and return the exit code of the run."""
        options = self.node.get_options()
        stdout_name = options.get('output_filename') or 'les.out'
        stderr_name = self.node.process_class._STDERR_FILENAME
        files = self.retrieved.base.repository.list_object_names()
        if stdout_name not in files:
            return self.scheduler_exit_code() or self.exit_codes.ERROR_OUTPUT_STDOUT_MISSING
        try:
            stdout = self.retrieved.base.repository.get_object_content(stdout_name, mode='r')
            stderr = (
                self.retrieved.base.repository.get_object_content(stderr_name, mode='r') if stderr_name in files else ''
            )
        except (OSError, UnicodeDecodeError):
            return self.exit_codes.ERROR_OUTPUT_STDOUT_READ
        report = self.read_report(stdout, stderr)
        for line in stderr.splitlines():
            if line.strip() and not _RE_ERROR.match(line):
                self.logger.info(f'stderr: {line}')
        return self.parse_outputs(report, files, **kwargs)

    @staticmethod
    def read_report(stdout: str, stderr: str) -> ProgramReport:
        """Find the success line in ``stdout`` and the failure line (or a traceback) in ``stderr``."""
        report = ProgramReport()
        finished = list(_RE_FINISHED.finditer(stdout))
        if finished:
            report.finished = True
            report.details = dict(re.findall(r'(\w+)=(\S+)', finished[-1].group('details')))
        errors = list(_RE_ERROR.finditer(stderr))
        usage = list(_RE_USAGE.finditer(stderr))
        if errors:
            report.error_name = errors[-1].group('name')
            report.error_message = errors[-1].group('message').strip()
        elif usage:  # the command line the CalcJob wrote was refused: a plugin bug, not a user error
            report.error_name = 'USAGE'
            report.error_message = usage[-1].group('message').strip()
        report.traceback = 'Traceback (most recent call last)' in stderr
        return report

    def scheduler_exit_code(self) -> ExitCode | None:
        """Return the exit code the scheduler output parser already set (out of walltime 120, memory 110, ...).

        Used when the program left no verdict of its own: the scheduler's diagnosis is then the better one, and the
        restart workchains have handlers for it.
        """
        status = self.node.exit_status
        if status is None or status == 0:
            return None
        return ExitCode(status, self.node.exit_message)

    def incomplete_exit_code(self) -> ExitCode:
        """Exit code of a run that stopped without reporting success or failure."""
        return self.scheduler_exit_code() or self.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE

    def parse_outputs(self, report: ProgramReport, files: list[str], **kwargs) -> ExitCode | None:
        """Attach outputs and return the exit code; implemented by subclasses."""
        raise NotImplementedError

    def error_exit_code(self, report: ProgramReport) -> ExitCode | None:
        """Return the exit code for a failure the program reported (or for a traceback), None if it reported none."""
        if report.error_name is not None:
            label = self.ERROR_MAP.get(report.error_name, 'ERROR_UNEXPECTED_FAILURE')
            exit_code = getattr(self.exit_codes, label)
            message = report.error_message
            if label == 'ERROR_UNEXPECTED_FAILURE':
                message = f'{report.error_name}: {message}'
            return exit_code.format(error=message) if '{error}' in exit_code.message else exit_code
        if report.traceback:
            return self.exit_codes.ERROR_UNEXPECTED_FAILURE.format(error='Python traceback on stderr')
        return None

    def read_json(self, filename: str) -> dict[str, t.Any]:
        """Return the JSON object of the retrieved file ``filename``.

        :raises ValueError: if the file is not valid JSON or not an object.
        """
        content = self.retrieved.base.repository.get_object_content(filename, mode='r')
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exception:
            raise ValueError(f'{filename} is not valid JSON: {exception}') from exception
        if not isinstance(data, dict):
            raise ValueError(f'{filename} must hold a JSON object, got {type(data).__name__}')
        return data
