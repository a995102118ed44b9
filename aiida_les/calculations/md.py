"""LesMdCalculation: molecular dynamics with a committee of LES models (``les-md``), stopping when uncertain."""

from __future__ import annotations

import typing as t

from aiida import orm
from aiida.common.folders import Folder

from aiida_les.calculations.base import BaseLesCalculation, committee_copy_list, committee_filenames, validate_models
from aiida_les.data.model import LesModelData

__all__ = ('LesMdCalculation',)


class LesMdCalculation(BaseLesCalculation):
    """Run MD from ``structure`` with the committee ``models`` through ``les-md``.

    The run stops early when the committee force deviation exceeds ``max_force_std`` (the usual end of an
    exploration run: this is a *success*, flagged ``stop_reason: 'uncertainty'`` in ``output_parameters``), or when
    the dynamics turn unphysical (atoms closer than ``min_distance``, energy drift above ``max_energy_change``):
    exit code 420, with the frames up to that point still attached as ``trajectory``.
    """

    _KIND = 'md'
    _DEFAULT_PARSER = 'les.md'
    _STRUCTURE_FILENAME = 'structure.extxyz'
    _TRAJECTORY_FILENAME = 'md.extxyz'
    _SUMMARY_FILENAME = 'md_summary.json'
    _OWNED_KEYS: t.ClassVar[dict[str, str]] = {
        'models': 'models',
        'structure': 'structure',
        'trajectory_file': '',
        'summary_file': '',
        'device': 'metadata.options.device',
    }

    @classmethod
    def define(cls, spec):
        """Define the inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='Starting structure.')
        spec.input_namespace(
            'models',
            valid_type=LesModelData,
            dynamic=True,
            validator=validate_models,
            help='The committee: one or more LesModelData; the first (in sorted label order) drives the dynamics, '
            'all of them give the uncertainty.',
        )
        spec.output(
            'trajectory',
            valid_type=orm.TrajectoryData,
            help='Frames written every `write_every` steps, with per-frame arrays (energy [eV], temperature [K], '
            'committee force deviation [eV/Å], ...) as written by the program.',
        )
        spec.output('final_structure', valid_type=orm.StructureData, help='The last frame of the trajectory.')
        spec.output('output_parameters', valid_type=orm.Dict, help='Run summary: steps done, stop reason, timing.')
        spec.default_output_node = 'output_parameters'

        spec.exit_code(320, 'ERROR_TRAJECTORY_FILE_MISSING', message='The trajectory file was not retrieved.')
        spec.exit_code(321, 'ERROR_SUMMARY_FILE_MISSING', message='The summary file was not retrieved.')
        spec.exit_code(322, 'ERROR_SUMMARY_FILE_READ', message='The summary file could not be read: {error}')
        spec.exit_code(323, 'ERROR_TRAJECTORY_FILE_READ', message='The trajectory file could not be read: {error}')
        spec.exit_code(
            420,
            'ERROR_MD_UNSTABLE',
            message='The dynamics became unphysical ({error}); the frames up to that point are attached.',
        )

    @classmethod
    def placeholder_files(cls, inputs: dict) -> dict[str, t.Any]:
        """Return the owned keys as the CalcJob will set them."""
        options = inputs.get('metadata', {}).get('options', {})
        return {
            'models': committee_filenames(inputs.get('models', {}) or {'0': None}),
            'structure': cls._STRUCTURE_FILENAME,
            'trajectory_file': cls._TRAJECTORY_FILENAME,
            'summary_file': cls._SUMMARY_FILENAME,
            'device': options.get('device', 'auto'),
        }

    def write_input_files(self, folder: Folder) -> tuple[dict[str, t.Any], list, list]:
        """Write the structure as extxyz and copy the model files."""
        atoms = self.inputs.structure.get_ase()
        with folder.open(self._STRUCTURE_FILENAME, 'w', encoding='utf-8') as handle:
            atoms.write(handle, format='extxyz')
        filenames, local_copy_list = committee_copy_list(self.inputs.models)
        owned = {
            'models': filenames,
            'structure': self._STRUCTURE_FILENAME,
            'trajectory_file': self._TRAJECTORY_FILENAME,
            'summary_file': self._SUMMARY_FILENAME,
        }
        return owned, local_copy_list, []

    def retrieve_files(self, config: dict[str, t.Any]) -> list[str]:
        """The trajectory and the summary."""
        return [self._TRAJECTORY_FILENAME, self._SUMMARY_FILENAME]
