"""LesAseLabelParser: turn a ``les-ase-label`` run into energy, forces, stress and one-frame labelled datasets.

One structure gives ``output_parameters``, ``forces``, ``stress`` (periodic cells) and ``labelled``. A batch gives
``labels.<key>`` for each structure labelled, and ``output_parameters.structures.<key>`` for every structure: its
``status`` and ``message`` from the runner, ``seconds``, ``energy`` (eV) when labelled, and ``exit_status``, the
exit status a job of that structure alone would have had (0 when labelled).
"""

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

#: Runner status of a structure -> exit-code label of its failure.
_FAILURES = {'import_failed': 'ERROR_CALCULATOR_IMPORT', 'calculator_failed': 'ERROR_CALCULATOR_FAILED'}


class LesAseLabelParser(Parser):
    """Parse ``labelled.extxyz`` (or ``labelled/<key>.extxyz``) and ``results.json`` of a ``les.ase_label`` job."""

    def parse(self, **kwargs) -> ExitCode | None:
        """Parse the retrieved files; ``output_parameters`` is attached whenever ``results.json`` exists."""
        calc = self.node.process_class
        names = self.retrieved.base.repository.list_object_names()
        if calc._RESULTS_FILE not in names:
            return self.exit_codes.ERROR_RESULTS_FILE_MISSING
        record = json.loads(self.retrieved.base.repository.get_object_content(calc._RESULTS_FILE))
        level = ase_level_of_theory(self.node.inputs.calculator.get_dict())
        if 'structures' in self.node.inputs and self.node.inputs.structures:
            return self._parse_batch(record, level)
        parameters = {'status': record['status'], 'message': record['message'], 'seconds': record.get('seconds')}
        if record['status'] != 'ok':
            self.out('output_parameters', orm.Dict(parameters))
            return self._failure(record)
        if calc._OUTPUT_FILE not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING
        atoms = self.node.inputs.structure.get_ase()
        frame = self._read_frame(calc._OUTPUT_FILE, atoms, level)
        if isinstance(frame, ExitCode):
            return frame
        energy = float(frame.get_potential_energy())
        parameters.update({'energy': energy, 'energy_units': 'eV', 'level_of_theory': level})
        self.out('output_parameters', orm.Dict(parameters))
        self.out('forces', _array('forces', frame.get_forces()))
        if np.all(atoms.pbc):
            self.out('stress', _array('stress', frame.get_stress(voigt=False)))
        self.out('labelled', LesDatasetData.from_ase([frame]))
        return None

    def _failure(self, record: dict) -> ExitCode:
        """The exit code of a structure the runner reported as failed."""
        label = _FAILURES.get(record['status'], 'ERROR_CALCULATOR_FAILED')
        return getattr(self.exit_codes, label).format(message=record['message'])

    def _read_frame(self, name: str, atoms, level: str):
        """Read one labelled frame; return it, or the exit code when it is unreadable or not the input structure."""
        try:
            content = self.retrieved.base.repository.get_object_content(name)
            frame = ase.io.read(io.StringIO(content), format='extxyz')
        except Exception:
            return self.exit_codes.ERROR_OUTPUT_READ
        if len(frame) != len(atoms) or not np.allclose(frame.positions, atoms.positions, atol=1e-6):
            return self.exit_codes.ERROR_OUTPUT_INCONSISTENT.format(message='atoms or positions differ')
        frame.info['level_of_theory'] = level
        return frame

    def _parse_batch(self, record: dict, level: str) -> ExitCode | None:
        """Attach ``labels.<key>`` for every labelled structure; record each structure's status and exit status."""
        calc = self.node.process_class
        structures = self.node.inputs.structures
        reported = record.get('structures') or {}
        entries, labels = {}, {}
        for key in sorted(structures):
            entry = dict(reported.get(key) or {'status': 'missing', 'message': 'not in results.json'})
            if entry['status'] == 'ok':
                frame = self._read_frame(f'{calc._BATCH_OUTPUTS}/{key}.extxyz', structures[key].get_ase(), level)
            elif entry['status'] in _FAILURES:
                frame = self._failure(entry)
            else:
                frame = self.exit_codes.ERROR_OUTPUT_MISSING
            if isinstance(frame, ExitCode):
                entry.update(exit_status=frame.status, message=entry.get('message') or frame.message)
            else:
                entry.update(exit_status=0, energy=float(frame.get_potential_energy()), energy_units='eV')
                labels[key] = LesDatasetData.from_ase([frame])
            entries[key] = entry
        failed = sorted(key for key, entry in entries.items() if entry['exit_status'] != 0)
        parameters = {
            'status': 'ok' if not failed else 'some_failed',
            'n_structures': len(entries),
            'n_labelled': len(labels),
            'failed': failed,
            'seconds': record.get('seconds'),
            'level_of_theory': level,
            'structures': entries,
        }
        self.out('output_parameters', orm.Dict(parameters))
        if labels:
            self.out('labels', labels)
        if failed:
            message = f'{len(failed)} of {len(entries)}: {", ".join(failed[:5])}{" ..." if len(failed) > 5 else ""}'
            return self.exit_codes.ERROR_SOME_STRUCTURES_FAILED.format(message=message)
        return None


def _array(name: str, values: np.ndarray) -> orm.ArrayData:
    array = orm.ArrayData()
    array.set_array(name, np.asarray(values, dtype=float))
    return array
