"""LesAseLabelParser: turn a ``les-ase-label`` run into energy, forces, stress and a one-frame labelled dataset."""

from __future__ import annotations

import io
import json

import ase.io
import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_les.data.dataset import LesDatasetData
from aiida_les.labelling.ase_runner import ase_level_of_theory

__all__ = ('LesAseLabelParser',)


class LesAseLabelParser(Parser):
    """Parse ``labelled.extxyz`` and ``results.json`` of a ``les.ase_label`` job (units: eV, Å)."""

    def parse(self, **kwargs) -> ExitCode | None:
        """Parse the retrieved files; ``output_parameters`` is attached whenever ``results.json`` exists."""
        calc = self.node.process_class
        names = self.retrieved.base.repository.list_object_names()
        if calc._RESULTS_FILE not in names:
            return self.exit_codes.ERROR_RESULTS_FILE_MISSING
        record = json.loads(self.retrieved.base.repository.get_object_content(calc._RESULTS_FILE))
        level = ase_level_of_theory(self.node.inputs.calculator.get_dict())
        parameters = {'status': record['status'], 'message': record['message'], 'seconds': record.get('seconds')}
        if record['status'] == 'import_failed':
            self.out('output_parameters', orm.Dict(parameters))
            return self.exit_codes.ERROR_CALCULATOR_IMPORT.format(message=record['message'])
        if record['status'] != 'ok':
            self.out('output_parameters', orm.Dict(parameters))
            return self.exit_codes.ERROR_CALCULATOR_FAILED.format(message=record['message'])
        if calc._OUTPUT_FILE not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING
        try:
            content = self.retrieved.base.repository.get_object_content(calc._OUTPUT_FILE)
            frame = ase.io.read(io.StringIO(content), format='extxyz')
        except Exception:
            return self.exit_codes.ERROR_OUTPUT_READ
        atoms = self.node.inputs.structure.get_ase()
        if len(frame) != len(atoms) or not np.allclose(frame.positions, atoms.positions, atol=1e-6):
            return self.exit_codes.ERROR_OUTPUT_INCONSISTENT.format(message='atoms or positions differ')
        frame.info['level_of_theory'] = level
        energy = float(frame.get_potential_energy())
        forces = frame.get_forces()
        parameters.update({'energy': energy, 'energy_units': 'eV', 'level_of_theory': level})
        self.out('output_parameters', orm.Dict(parameters))
        self.out('forces', _array('forces', forces))
        if np.all(atoms.pbc):
            self.out('stress', _array('stress', frame.get_stress(voigt=False)))
        self.out('labelled', LesDatasetData.from_ase([frame]))
        return None


def _array(name: str, values: np.ndarray) -> orm.ArrayData:
    array = orm.ArrayData()
    array.set_array(name, np.asarray(values, dtype=float))
    return array
