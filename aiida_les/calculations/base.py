"""BaseLesCalculation: shared ports, options and exit codes of the CalcJobs that run the ``les-*`` programs.

Each subclass runs one program (``les-train``, ``les-md``, ``les-eval``) with a single YAML configuration file. The
user gives the configuration as a ``Dict`` without file paths; the CalcJob writes the input files, fills in the
paths it owns, adds the ``device`` option, and validates the result with :func:`les_model.config.validate_config`
both in the input validator (so a bad configuration fails before submission) and again before writing the file.
"""

from __future__ import annotations

import typing as t

import yaml
from aiida import orm
from aiida.common import datastructures
from aiida.common.folders import Folder
from aiida.engine import CalcJob
from aiida.engine.processes.calcjobs.calcjob import validate_calc_job

from les_model.config import config_class, validate_config

__all__ = ('BaseLesCalculation',)

DEVICES = ('auto', 'cpu', 'cuda')


#: Exit codes of a job that was killed or lost its files (node failure, SIGKILL, scratch purge): its inputs are fine,
#: so the restart workchains run it again (or resume it from a surviving checkpoint).
INTERRUPTED_EXIT_CODES = ('ERROR_OUTPUT_STDOUT_MISSING', 'ERROR_OUTPUT_STDOUT_READ', 'ERROR_OUTPUT_STDOUT_INCOMPLETE')


class BaseLesCalculation(CalcJob):
    """Base class of the CalcJobs that run one ``les-*`` program on a YAML configuration.

    Subclasses set :attr:`_KIND` (the section kind of :mod:`les_model.config`), :attr:`_OWNED_KEYS` (configuration
    keys the CalcJob fills in from its inputs, mapped to the name of that input) and implement
    :meth:`write_input_files`.
    """

    _KIND: t.ClassVar[str] = ''
    _DEFAULT_PARSER: t.ClassVar[str] = ''
    _CONFIG_FILENAME: t.ClassVar[str] = 'config.yaml'
    _STDOUT_FILENAME: t.ClassVar[str] = 'les.out'
    _STDERR_FILENAME: t.ClassVar[str] = 'les.err'
    _OWNED_KEYS: t.ClassVar[dict[str, str]] = {}
    _RETRIEVE: t.ClassVar[tuple[str, ...]] = ()

    @classmethod
    def define(cls, spec):
        """Define the ports shared by all ``les-*`` CalcJobs."""
        super().define(spec)
        spec.input(
            'config',
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help=cls._config_help(),
        )
        spec.input(
            'metadata.options.device',
            valid_type=str,
            default='auto',
            validator=_validate_device,
            help='Torch device the program runs on: `auto` (CUDA when available), `cpu` or `cuda`. Request the GPU '
            'from the scheduler too, e.g. with `aiida_les.utils.resources.gpu_options`.',
        )
        spec.input(
            'metadata.options.input_filename', valid_type=str, default=cls._CONFIG_FILENAME, help='YAML config file.'
        )
        spec.input(
            'metadata.options.output_filename', valid_type=str, default=cls._STDOUT_FILENAME, help='Program stdout.'
        )
        spec.input(
            'metadata.options.resources',
            valid_type=dict,
            default=lambda: {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
            help='Scheduler resources; the programs are not MPI programs, one process is the norm.',
        )
        spec.input('metadata.options.withmpi', valid_type=bool, default=False, help='Run under mpirun (normally no).')
        if cls._DEFAULT_PARSER:
            spec.input('metadata.options.parser_name', valid_type=str, default=cls._DEFAULT_PARSER)
        spec.inputs.validator = cls.validate_inputs

        spec.exit_code(302, 'ERROR_OUTPUT_STDOUT_MISSING', message='The program stdout file was not retrieved.')
        spec.exit_code(310, 'ERROR_OUTPUT_STDOUT_READ', message='The program stdout file could not be read.')
        spec.exit_code(
            312,
            'ERROR_OUTPUT_STDOUT_INCOMPLETE',
            message='The program output is incomplete: the program stopped without reporting success or an error.',
        )
        spec.exit_code(
            350, 'ERROR_UNEXPECTED_FAILURE', message='The program failed with an error it does not classify: {error}'
        )
        spec.exit_code(
            430,
            'ERROR_INVALID_CONFIG',
            message='The program rejected its configuration: {error}',
        )
        spec.exit_code(
            431,
            'ERROR_INVALID_INPUT_DATA',
            message='The program could not read its input data (structure, dataset or model file): {error}',
        )
        spec.exit_code(
            432,
            'ERROR_INCOMPATIBLE_MODEL',
            message='A model file has an unsupported format version or does not fit the data: {error}',
        )
        spec.exit_code(
            440, 'ERROR_DEVICE_UNAVAILABLE', message='The requested torch device is not available on the machine.'
        )

    @classmethod
    def _config_help(cls) -> str:
        """Help of the ``config`` port: the keys of the section with their type, default, unit and meaning."""
        text = (
            f'Configuration of the `{cls._KIND}` run, the mapping of `les_model.config` without the file paths, '
            'which the CalcJob sets from its other inputs (and `device`, from `metadata.options.device`).'
        )
        if not cls._KIND:
            return text
        keys = config_class(cls._KIND).describe(skip={*cls._OWNED_KEYS, 'device'})
        return '\n'.join([f'{text} Keys (type, default, [unit] meaning):', *keys])

    @classmethod
    def validate_inputs(cls, inputs: dict, ctx) -> str | None:
        """Validate the whole input namespace: the base CalcJob checks, then the full configuration.

        :return: an error message, or None when the inputs are valid.
        """
        message = validate_calc_job(inputs, ctx)
        if message:
            return message
        # Skip when the namespace is only partially defined (exposed in a workchain with inputs excluded): the
        # workchain then calls `check_config` itself with the complete inputs.
        if any(name not in ctx for name in cls._OWNED_KEYS.values() if name and '.' not in name):
            return None
        return cls.check_config(inputs)

    @classmethod
    def check_config(cls, inputs: dict) -> str | None:
        """Check the configuration the CalcJob would write for ``inputs`` with ``les_model.config``.

        :param inputs: the CalcJob inputs (a mapping; ``config`` may be absent).
        :return: an error message, or None when the configuration is valid.
        """
        config = inputs['config'].get_dict() if 'config' in inputs else {}
        owned = sorted(set(config) & set(cls._OWNED_KEYS))
        if owned:
            sources = ', '.join(
                f'`{key}` (from input `{cls._OWNED_KEYS[key]}`)' if cls._OWNED_KEYS[key] else f'`{key}` (fixed name)'
                for key in owned
            )
            return f'config: the CalcJob sets {sources}; remove them from the configuration.'
        placeholder = cls.placeholder_files(inputs)
        errors = validate_config({**config, **placeholder}, cls._KIND)
        if errors:
            return f'config is invalid for `{cls._KIND}`: ' + '; '.join(errors)
        return cls.validate_specific(inputs, config)

    @classmethod
    def placeholder_files(cls, inputs: dict) -> dict[str, t.Any]:
        """Return the owned configuration keys with (stand-ins for) the values the CalcJob will give them."""
        return {}

    @classmethod
    def validate_specific(cls, inputs: dict, config: dict) -> str | None:
        """Subclass hook for checks beyond the configuration schema; return an error message or None."""
        return None

    def write_input_files(self, folder: Folder) -> tuple[dict[str, t.Any], list, list]:
        """Write the input files into ``folder``.

        :return: the owned configuration keys with their values, the ``local_copy_list`` and the
            ``remote_copy_list`` of the :class:`~aiida.common.datastructures.CalcInfo`.
        """
        raise NotImplementedError

    def build_config(self, owned: dict[str, t.Any]) -> dict[str, t.Any]:
        """Return the full configuration: user keys, the owned keys and the device option."""
        config = self.inputs.config.get_dict() if 'config' in self.inputs else {}
        config.update(owned)
        config['device'] = self.inputs.metadata.options.device
        return config

    def prepare_for_submission(self, folder: Folder) -> datastructures.CalcInfo:
        """Write the input files and the YAML configuration, and return the calculation info.

        :raises ValueError: if the assembled configuration is rejected by ``les_model.config``.
        """
        owned, local_copy_list, remote_copy_list = self.write_input_files(folder)
        config = self.build_config(owned)
        errors = validate_config(config, self._KIND)
        if errors:
            raise ValueError(f'config is invalid for `{self._KIND}`: ' + '; '.join(errors))
        with folder.open(self.inputs.metadata.options.input_filename, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(config, handle, sort_keys=True)

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = self.cmdline_params()
        codeinfo.stdout_name = self.inputs.metadata.options.output_filename
        codeinfo.stderr_name = self._STDERR_FILENAME
        codeinfo.withmpi = self.inputs.metadata.options.withmpi

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        calcinfo.remote_copy_list = remote_copy_list
        calcinfo.retrieve_list = [
            self.inputs.metadata.options.output_filename,
            self._STDERR_FILENAME,
            *self.retrieve_files(config),
        ]
        return calcinfo

    def cmdline_params(self) -> list[str]:
        """Return the command-line arguments of the program (the configuration file by default)."""
        return [self.inputs.metadata.options.input_filename]

    def retrieve_files(self, config: dict[str, t.Any]) -> list[str]:
        """Return the output files (names or glob patterns) to retrieve besides stdout and stderr."""
        return list(self._RETRIEVE)


def _validate_device(value: str, _) -> str | None:
    if value not in DEVICES:
        return f'device must be one of {list(DEVICES)}, got {value!r}.'
    return None


def validate_models(value, _) -> str | None:
    """The ``models`` namespace needs at least one model."""
    if value is not None and len(value) == 0:
        return 'models: give at least one LesModelData (a committee of one is allowed).'
    return None


def committee_filenames(labels) -> list[str]:
    """Return the file names the committee members get in the working directory, in sorted label order."""
    return [f'model_{label}.pt' for label in sorted(labels)]


def committee_copy_list(models) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Return the member file names and the ``local_copy_list`` entries that stage a ``models`` namespace."""
    labels = sorted(models)
    filenames = committee_filenames(labels)
    copies = [(models[label].uuid, models[label].filename, name) for label, name in zip(labels, filenames, strict=True)]
    return filenames, copies
