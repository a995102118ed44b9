"""LesCp2kCalculation: label one structure (energy, forces, stress, charges, dipole, Born charges) with CP2K.

The job runs our ``les-cp2k`` program (the code's executable, serial: ``withmpi`` is False), which starts CP2K
itself with the command ``<mpi_launcher> <cp2k_executable> -i aiida.inp``:

- ``metadata.options.cp2k_executable`` (default ``cp2k.psmp``): the CP2K binary on the compute node;
- ``metadata.options.mpi_launcher`` (default ``mpirun -np {num_mpiprocs}``): the MPI launcher; ``{num_mpiprocs}`` is
  replaced by the total MPI processes of the job resources; an empty string runs CP2K without MPI.

The CalcJob writes ``aiida.inp`` (the CP2K input, for reading and regression tests) and ``les_cp2k.json`` (the
nested input, the command, the correction ladder and the time budget for the runner); it retrieves the final
``aiida.inp`` (after corrections), ``aiida.out``, ``corrections.json``, ``cp2k.err`` and the runner log; with
``parameters.bec`` also ``bec.json`` (every displaced single point: energy, dipole, charges, SCF) and the log of
the farming run that computed them (the 6N displaced inputs and outputs stay in the remote folder).
Units of every output: eV, Å, e (see :class:`aiida_les.parsers.cp2k.LesCp2kParser`).
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_les.data.dataset import LesDatasetData
from aiida_les.labelling import cp2k_bec
from aiida_les.labelling.cp2k_input import DEFAULT_BEC_DISPLACEMENT, build_cp2k_input, render_cp2k_input
from aiida_les.labelling.validation import check_structure

__all__ = ('LesCp2kCalculation',)


def validate_parameters(value: orm.Dict, _ctx) -> str | None:
    """Check protocol parameters: known keys, either ``xtb`` or a ``kinds`` table, the response-label switches."""
    known = {'protocol', 'method', 'xtb', 'kinds', 'force_eval', 'min_distance', 'min_cell_width', 'vacuum'}
    known |= {'dipole', 'bec', 'bec_displacement'}
    parameters = value.get_dict()
    unknown = sorted(set(parameters) - known)
    if unknown:
        return f'Unknown keys {unknown} in `parameters`; expected a subset of {sorted(known)}.'
    for switch in ('dipole', 'bec'):
        if not isinstance(parameters.get(switch, False), bool):
            return f'`parameters.{switch}` must be true or false, got {parameters[switch]!r}.'
    displacement = parameters.get('bec_displacement', DEFAULT_BEC_DISPLACEMENT)
    if isinstance(displacement, bool) or not isinstance(displacement, int | float) or not 0 < displacement <= 0.1:
        return f'`parameters.bec_displacement` must be a number in (0, 0.1] Å, got {displacement!r}.'
    if not parameters.get('xtb') and not parameters.get('kinds'):
        return '`parameters` needs either `xtb: true` or a `kinds` table (element -> basis_set, potential).'
    for element, kind in (parameters.get('kinds') or {}).items():
        if not isinstance(kind, dict) or not {'basis_set', 'potential'} <= set(kind):
            return f'`kinds.{element}` must hold `basis_set` and `potential`, got {kind!r}.'
    return None


def validate_inputs(inputs: dict, _ctx) -> str | None:
    """Check the structure against the protocol and the charge/multiplicity before submission."""
    if 'structure' not in inputs or 'parameters' not in inputs:
        return None
    return check_structure(
        inputs['structure'].get_ase(),
        inputs['parameters'].get_dict(),
        int(inputs['total_charge'].value) if 'total_charge' in inputs else 0,
        int(inputs['multiplicity'].value) if 'multiplicity' in inputs else 1,
    )


def validate_settings(value: orm.Dict | None, _ctx) -> str | None:
    """Check the runner settings: ``max_corrections`` (int >= 0) and ``ladder`` (list of named corrections)."""
    if value is None:
        return None
    settings = value.get_dict()
    unknown = sorted(set(settings) - {'max_corrections', 'ladder'})
    if unknown:
        return f'Unknown keys {unknown} in `settings`; expected `max_corrections` and/or `ladder`.'
    max_corrections = settings.get('max_corrections', 5)
    if not isinstance(max_corrections, int) or max_corrections < 0:
        return f'`settings.max_corrections` must be an integer >= 0, got {max_corrections!r}.'
    for step in settings.get('ladder') or []:
        if not isinstance(step, dict) or 'name' not in step or not isinstance(step.get('set', {}), dict):
            return f'Each `settings.ladder` entry needs a `name` and a `set` dict, got {step!r}.'
    return None


class LesCp2kCalculation(CalcJob):
    """Label one structure with CP2K (ENERGY_FORCE) run by ``les-cp2k`` under custodian."""

    _INPUT_FILE = 'aiida.inp'
    _OUTPUT_FILE = 'aiida.out'
    _SETTINGS_FILE = 'les_cp2k.json'
    _CORRECTIONS_FILE = 'corrections.json'
    _STDERR_FILE = 'cp2k.err'
    _RUNNER_LOG = 'les_cp2k.log'

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The structure to label (Å).')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            validator=validate_parameters,
            help='Protocol parameters (protocol, method, xtb or kinds, force_eval sections); see cp2k_input.',
        )
        spec.input(
            'total_charge',
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            serializer=orm.to_aiida_type,
            help='Total charge of the system (e).',
        )
        spec.input(
            'multiplicity',
            valid_type=orm.Int,
            default=lambda: orm.Int(1),
            serializer=orm.to_aiida_type,
            help='Spin multiplicity 2S+1; UKS is used when it is not 1.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            validator=validate_settings,
            help='Runner settings: `max_corrections` (default 5) and `ladder` (SCF corrections to try, in order).',
        )
        spec.inputs.validator = validate_inputs
        spec.input('metadata.options.cp2k_executable', valid_type=str, default='cp2k.psmp', help='CP2K binary.')
        spec.input(
            'metadata.options.mpi_launcher',
            valid_type=str,
            default='mpirun -np {num_mpiprocs}',
            help='MPI launcher for CP2K; `{num_mpiprocs}` is replaced from the resources; empty for none.',
        )
        spec.inputs['metadata']['options']['withmpi'].default = False
        # `verdi calcjob inputcat` and `outputcat` show these without a file name.
        spec.inputs['metadata']['options']['input_filename'].default = cls._INPUT_FILE
        spec.inputs['metadata']['options']['output_filename'].default = cls._OUTPUT_FILE
        spec.inputs['metadata']['options']['parser_name'].default = 'les.cp2k'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}

        spec.output('output_parameters', valid_type=orm.Dict, help='Energy (eV), SCF, timing, corrections, charges.')
        spec.output('forces', valid_type=orm.ArrayData, required=False, help='Array `forces` (n_atoms, 3) in eV/Å.')
        spec.output(
            'stress', valid_type=orm.ArrayData, required=False, help='Array `stress` (3, 3) in eV/Å^3, ase sign.'
        )
        spec.output(
            'labelled',
            valid_type=LesDatasetData,
            required=False,
            help='One-frame labelled extxyz with level_of_theory.',
        )
        spec.output(
            'born_charges',
            valid_type=orm.ArrayData,
            required=False,
            help='Array `born_charges` (n_atoms, 3, 3) in e, Z*[k, a, b] = d mu_a / d u_kb (with `parameters.bec`).',
        )
        spec.default_output_node = 'output_parameters'

        spec.exit_code(302, 'ERROR_OUTPUT_STDOUT_MISSING', message='The CP2K output file was not retrieved.')
        spec.exit_code(310, 'ERROR_OUTPUT_STDOUT_READ', message='The CP2K output file could not be read.')
        spec.exit_code(311, 'ERROR_OUTPUT_STDOUT_PARSE', message='The CP2K output lacks the energy, forces or stress.')
        spec.exit_code(312, 'ERROR_OUTPUT_STDOUT_INCOMPLETE', message='The CP2K output stopped before its end.')
        spec.exit_code(313, 'ERROR_OUTPUT_INCONSISTENT', message='Parsed arrays do not match the structure: {message}')
        spec.exit_code(314, 'ERROR_UNEXPECTED_UNITS', message='CP2K printed unexpected units: {message}')
        spec.exit_code(320, 'ERROR_CORRECTIONS_FILE_MISSING', message='The runner file corrections.json is missing.')
        spec.exit_code(
            321, 'ERROR_BEC_FILE_MISSING', message='The Born-charge record bec.json is missing or unreadable.'
        )
        spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='The calculation stopped at the time limit.')
        spec.exit_code(
            410, 'ERROR_SCF_NOT_CONVERGED', message='The SCF did not converge after all corrections: {message}'
        )
        spec.exit_code(
            411,
            'ERROR_SCF_CORRECTION_REFUSED',
            message='The SCF did not converge and the next correction would change what is computed: {message}',
        )
        spec.exit_code(
            420, 'ERROR_LABEL_INCONSISTENT', message='The computed settings changed during the run: {message}'
        )
        spec.exit_code(430, 'ERROR_OUT_OF_MEMORY', message='CP2K ran out of memory.')
        spec.exit_code(440, 'ERROR_CP2K_ABORTED', message='CP2K aborted: {message}')
        spec.exit_code(
            450, 'ERROR_BEC_FAILED', message='The finite-difference Born effective charges failed: {message}'
        )

    def _cp2k_command(self) -> list[str]:
        """Return the CP2K command line: the MPI launcher (with the job's MPI process count) and the binary."""
        options = self.inputs.metadata.options
        resources = dict(options.resources)
        if 'tot_num_mpiprocs' in resources:
            num_mpiprocs = int(resources['tot_num_mpiprocs'])
        else:
            per_machine = resources.get('num_mpiprocs_per_machine')
            per_machine = per_machine or self.inputs.code.computer.get_default_mpiprocs_per_machine() or 1
            num_mpiprocs = int(resources.get('num_machines', 1)) * int(per_machine)
        launcher = options.mpi_launcher.format(num_mpiprocs=num_mpiprocs).split()
        return [*launcher, options.cp2k_executable]

    def prepare_for_submission(self, folder):
        """Write ``aiida.inp`` and ``les_cp2k.json``; run ``les-cp2k les_cp2k.json``."""
        parameters = self.inputs.parameters.get_dict()
        sections = build_cp2k_input(
            self.inputs.structure.get_ase(),
            parameters,
            total_charge=self.inputs.total_charge.value,
            multiplicity=self.inputs.multiplicity.value,
        )
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        walltime = self.inputs.metadata.options.get('max_wallclock_seconds')
        runner = {
            'input': sections,
            'cp2k_command': self._cp2k_command(),
            'input_file': self._INPUT_FILE,
            'output_file': self._OUTPUT_FILE,
            'stderr_file': self._STDERR_FILE,
            'max_corrections': settings.get('max_corrections', 5),
            'ladder': settings.get('ladder'),
            'time_budget': 0.9 * walltime if walltime else None,
            'bec': None,
        }
        if parameters.get('bec'):
            runner['bec'] = {'displacement': float(parameters.get('bec_displacement', DEFAULT_BEC_DISPLACEMENT))}
        with folder.open(self._INPUT_FILE, 'w') as handle:
            handle.write(render_cp2k_input(sections))
        with folder.open(self._SETTINGS_FILE, 'w') as handle:
            json.dump(runner, handle, indent=2, sort_keys=True)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [self._SETTINGS_FILE]
        codeinfo.stdout_name = self._RUNNER_LOG
        codeinfo.join_files = True

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [
            self._INPUT_FILE,
            self._OUTPUT_FILE,
            self._CORRECTIONS_FILE,
            self._STDERR_FILE,
            self._RUNNER_LOG,
        ]
        if parameters.get('bec'):
            calcinfo.retrieve_list += [cp2k_bec.RECORD_FILE, cp2k_bec.FARMING_OUTPUT]
        return calcinfo
