"""LesAseLabelCalculation: label one structure, or a batch, with any ASE calculator, run by ``les-ase-label``.

The ``calculator`` Dict holds ``import_path`` (``ase.calculators.emt.EMT``, ``tblite.ase.TBLite``...), ``kwargs``,
an optional ``label`` (readable method name for the level of theory) and optional ``charge_kwarg`` /
``multiplicity_kwarg`` naming the calculator's keywords for total charge and spin multiplicity. A charged or
spin-polarised structure is refused unless the calculator has these keywords. Outputs and units match
``les.cp2k``: energy eV, forces eV/Å, stress eV/Å^3 (ase sign), one-frame labelled dataset.

A batch (the ``structures`` namespace instead of ``structure``) runs in one job, each structure on its own: the
outputs are one one-frame dataset per labelled structure, ``labels.<key>`` under the key of its input
``structures.<key>``, and ``output_parameters.structures.<key>`` (status, message, seconds, exit status the
structure would have had as a job of its own). A structure that fails leaves the others' labels in place; the job
then exits with ``ERROR_SOME_STRUCTURES_FAILED`` and the caller retries the failed keys.
"""

from __future__ import annotations

import io
import json

import ase.io
from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_les.data.dataset import LesDatasetData
from aiida_les.labelling.validation import check_charge_multiplicity, check_geometry

__all__ = ('LesAseLabelCalculation', 'check_ase_inputs')

_CALCULATOR_KEYS = {'import_path', 'kwargs', 'label', 'charge_kwarg', 'multiplicity_kwarg'}


def validate_calculator(value: orm.Dict, _ctx) -> str | None:
    """Check the calculator description: a dotted ``import_path``, dict ``kwargs``, no unknown keys."""
    calculator = value.get_dict()
    unknown = sorted(set(calculator) - _CALCULATOR_KEYS)
    if unknown:
        return f'Unknown keys {unknown} in `calculator`; expected a subset of {sorted(_CALCULATOR_KEYS)}.'
    path = calculator.get('import_path')
    if not isinstance(path, str) or '.' not in path:
        return f'`calculator.import_path` must be a dotted path like `ase.calculators.emt.EMT`, got {path!r}.'
    if not isinstance(calculator.get('kwargs', {}), dict):
        return f'`calculator.kwargs` must be a dict, got {type(calculator["kwargs"]).__name__}.'
    return None


def check_ase_inputs(atoms, calculator: dict, total_charge: int = 0, multiplicity: int = 1) -> str | None:
    """Return why ``atoms`` cannot be labelled by ``calculator`` with this charge/multiplicity, or None."""
    if total_charge != 0 and not calculator.get('charge_kwarg'):
        return f'Total charge {total_charge} given but `calculator.charge_kwarg` is not set: it would be ignored.'
    if multiplicity != 1 and not calculator.get('multiplicity_kwarg'):
        return f'Multiplicity {multiplicity} given but `calculator.multiplicity_kwarg` is not set.'
    return check_geometry(atoms, {'min_cell_width': 0.0}) or check_charge_multiplicity(
        atoms, total_charge, multiplicity
    )


def validate_inputs(inputs: dict, ctx) -> str | None:
    """One of ``structure`` / ``structures``; geometry, charge/multiplicity parity and calculator keywords of each."""
    # Exposed in a workchain with `structure` excluded, the caller sets it at run time.
    if ctx is not None and 'structure' not in ctx:
        return None
    structures = dict(inputs.get('structures') or {})
    if 'structure' in inputs and structures:
        return 'Give either `structure` or a batch in `structures`, not both.'
    if 'structure' in inputs:
        structures = {'structure': inputs['structure']}
    if not structures:
        return 'Give a `structure` or a batch in `structures`.'
    if 'calculator' not in inputs:
        return None
    for key, structure in sorted(structures.items()):
        error = check_ase_inputs(
            structure.get_ase(),
            inputs['calculator'].get_dict(),
            int(inputs['total_charge'].value) if 'total_charge' in inputs else 0,
            int(inputs['multiplicity'].value) if 'multiplicity' in inputs else 1,
        )
        if error:
            return f'{key}: {error}' if key != 'structure' else error
    return None


class LesAseLabelCalculation(CalcJob):
    """Label one structure with an ASE calculator (energy, forces, stress for periodic cells)."""

    _SETTINGS_FILE = 'les_ase_label.json'
    _STRUCTURE_FILE = 'structure.json'
    _OUTPUT_FILE = 'labelled.extxyz'
    _RESULTS_FILE = 'results.json'
    _LOG_FILE = 'les_ase_label.log'
    _BATCH_INPUTS = 'structures'
    _BATCH_OUTPUTS = 'labelled'

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, required=False, help='The structure to label (Å).')
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='A batch of structures (Å) labelled in one job, each output under the same key in `labels`.',
        )
        spec.input(
            'calculator',
            valid_type=orm.Dict,
            validator=validate_calculator,
            help='ASE calculator: import_path, kwargs, optional label, charge_kwarg, multiplicity_kwarg.',
        )
        spec.input(
            'total_charge',
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            serializer=orm.to_aiida_type,
            help='Total charge (e).',
        )
        spec.input(
            'multiplicity',
            valid_type=orm.Int,
            default=lambda: orm.Int(1),
            serializer=orm.to_aiida_type,
            help='Spin multiplicity 2S+1.',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['parser_name'].default = 'les.ase_label'
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}

        spec.output('output_parameters', valid_type=orm.Dict, help='Energy (eV), timing, level of theory.')
        spec.output('forces', valid_type=orm.ArrayData, required=False, help='Array `forces` (n_atoms, 3) in eV/Å.')
        spec.output('stress', valid_type=orm.ArrayData, required=False, help='Array `stress` (3, 3) eV/Å^3, ase sign.')
        spec.output('labelled', valid_type=LesDatasetData, required=False, help='One-frame labelled extxyz.')
        spec.output_namespace(
            'labels',
            valid_type=LesDatasetData,
            dynamic=True,
            required=False,
            help='Batch: one one-frame labelled dataset per labelled structure, under the key of `structures`.',
        )
        spec.default_output_node = 'output_parameters'

        spec.exit_code(302, 'ERROR_OUTPUT_MISSING', message='The labelled structure file was not retrieved.')
        spec.exit_code(310, 'ERROR_OUTPUT_READ', message='The labelled structure file could not be read.')
        spec.exit_code(
            313, 'ERROR_OUTPUT_INCONSISTENT', message='The labelled frame does not match the input: {message}'
        )
        spec.exit_code(320, 'ERROR_RESULTS_FILE_MISSING', message='The results.json file was not retrieved.')
        spec.exit_code(420, 'ERROR_CALCULATOR_IMPORT', message='The ASE calculator could not be created: {message}')
        spec.exit_code(421, 'ERROR_CALCULATOR_FAILED', message='The ASE calculator failed: {message}')
        spec.exit_code(
            470, 'ERROR_SOME_STRUCTURES_FAILED', message='Some structures of the batch were not labelled: {message}'
        )

    def prepare_for_submission(self, folder):
        """Write the structure(s) (ase JSON, full precision) and the settings; run ``les-ase-label les_ase_label.json``.

        A batch writes ``structures/<key>.json`` per structure and retrieves ``labelled/<key>.extxyz``.
        """
        calculator = self.inputs.calculator.get_dict()
        settings = {
            **calculator,
            'total_charge': self.inputs.total_charge.value,
            'multiplicity': self.inputs.multiplicity.value,
        }
        if 'structure' in self.inputs:
            settings['structure_file'] = self._STRUCTURE_FILE
            _write_json_structure(folder, self._STRUCTURE_FILE, self.inputs.structure)
            retrieve = [self._OUTPUT_FILE]
        else:
            folder.get_subfolder(self._BATCH_INPUTS, create=True)
            settings['structures'] = {key: f'{self._BATCH_INPUTS}/{key}.json' for key in self.inputs.structures}
            for key, name in settings['structures'].items():
                _write_json_structure(folder, name, self.inputs.structures[key])
            retrieve = [self._BATCH_OUTPUTS]
        with folder.open(self._SETTINGS_FILE, 'w') as target:
            json.dump(settings, target, indent=2, sort_keys=True)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [self._SETTINGS_FILE]
        codeinfo.stdout_name = self._LOG_FILE
        codeinfo.join_files = True

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [*retrieve, self._RESULTS_FILE, self._LOG_FILE]
        return calcinfo


def _write_json_structure(folder, name: str, structure: orm.StructureData) -> None:
    """Write ``structure`` as ase JSON (full precision) to ``name`` in the sandbox ``folder``."""
    handle = io.StringIO()
    ase.io.write(handle, structure.get_ase(), format='json')
    with folder.open(name, 'w') as target:
        target.write(handle.getvalue())
