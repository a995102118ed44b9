"""LesCp2kParser: turn a ``les-cp2k`` run into energy, forces, stress (dipole, Born charges) and a labelled frame.

CP2K prints energy in Hartree, forces in Hartree/bohr and stress in GPa with the opposite sign of ase's stress;
the parser checks the unit strings printed next to each block, converts to eV, eV/Å and eV/Å^3 (ase sign), and
checks shapes against the input structure. It also checks label consistency independently of the runner: the
computed settings of the final input must hash to the value rebuilt from the CalcJob inputs, and so must those of
the displaced single points behind the Born charges.

Dipoles (e·Å, frame ``info['dipole']``) follow :func:`aiida_les.labelling.cp2k_bec.dipole_from_output`. A periodic
(Berry-phase) dipole is defined modulo e·R for lattice vectors R, the polarization quantum, which is the frame's
cell: it is stored folded so that its lattice coordinates lie in [-1/2, 1/2) (the branch of
``les_model.nn.response.polarization``). Born charges are stored as the per-atom array ``bec`` (n_atoms, 9), Z*[k, a,
b] flattened row-major, the layout ``les_model`` reads.
"""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser
from ase import units

from aiida_les.data.dataset import LesDatasetData
from aiida_les.labelling import cp2k_bec
from aiida_les.labelling.cp2k_input import build_cp2k_input, level_of_theory, settings_sha1
from aiida_les.labelling.cp2k_output import DEBYE_IN_E_ANGSTROM, mentions_out_of_memory, parse_cp2k_output
from aiida_les.labelling.frames import labelled_frame
from les_model.electrostatics.polarization import acoustic_sum_rule_violation, nearest_image

__all__ = ('DEBYE_IN_E_ANGSTROM', 'LesCp2kParser')

_EXPECTED_UNITS = {'energy_unit': 'a.u.', 'forces_unit': 'a.u.', 'stress_unit': 'GPa'}


class LesCp2kParser(Parser):
    """Parse ``aiida.out`` and ``corrections.json`` of a ``les.cp2k`` job."""

    def parse(self, **kwargs) -> ExitCode | None:
        """Parse the retrieved files; attach ``output_parameters`` even when the run failed."""
        calc = self.node.process_class
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        if calc._OUTPUT_FILE not in names:
            return self.exit_codes.ERROR_OUTPUT_STDOUT_MISSING
        try:
            text = retrieved.base.repository.get_object_content(calc._OUTPUT_FILE)
        except (OSError, UnicodeDecodeError):
            return self.exit_codes.ERROR_OUTPUT_STDOUT_READ
        parsed = parse_cp2k_output(text)
        corrections = None
        if calc._CORRECTIONS_FILE in names:
            try:
                corrections = json.loads(retrieved.base.repository.get_object_content(calc._CORRECTIONS_FILE))
            except (OSError, json.JSONDecodeError):
                corrections = None
        logs = ''.join(
            retrieved.base.repository.get_object_content(name)
            for name in (calc._STDERR_FILE, calc._RUNNER_LOG)
            if name in names
        )
        results = self._output_parameters(parsed, corrections)
        exit_code = self._check_run(parsed, corrections, logs)
        if exit_code is None:
            exit_code = self._attach_labels(parsed, results)
        # Attached last (the labels add to it) and also when the run failed.
        self.out('output_parameters', orm.Dict(results))
        return exit_code

    def _check_run(self, parsed: dict, corrections: dict | None, logs: str) -> ExitCode | None:
        """Return the exit code of a failed run, None when the labels can be read."""
        if parsed['out_of_memory'] or mentions_out_of_memory(logs):
            return self.exit_codes.ERROR_OUT_OF_MEMORY
        status = (corrections or {}).get('status')
        if status == 'time_budget_exceeded' or parsed['walltime_exceeded']:
            return self.exit_codes.ERROR_OUT_OF_WALLTIME
        if corrections is None:
            return self.exit_codes.ERROR_CORRECTIONS_FILE_MISSING
        inconsistent = self._check_consistency(corrections)
        if inconsistent:
            return self.exit_codes.ERROR_LABEL_INCONSISTENT.format(message=inconsistent)
        if status == 'correction_refused':
            refused = '; '.join(
                f'{item["name"]} would change {item["changed_computed_settings"]}' for item in corrections['refused']
            )
            return self.exit_codes.ERROR_SCF_CORRECTION_REFUSED.format(message=refused)
        if status in ('scf_not_converged', 'max_corrections') or False in parsed['scf_converged']:
            applied = [item['name'] for item in corrections.get('corrections', [])]
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(message=f'corrections applied: {applied}')
        if parsed['aborted']:
            return self.exit_codes.ERROR_CP2K_ABORTED.format(message=parsed.get('abort_message', ''))
        if not parsed['completed']:
            return self.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE
        if status == 'bec_failed':
            return self.exit_codes.ERROR_BEC_FAILED.format(message=corrections.get('message', ''))
        return None

    def _output_parameters(self, parsed: dict, corrections: dict | None) -> dict:
        results = {
            'cp2k_version': parsed.get('cp2k_version'),
            'scf_converged': bool(parsed['scf_converged']) and all(parsed['scf_converged']),
            'scf_steps': parsed['scf_steps'][-1] if parsed['scf_steps'] else None,
            'wall_time': parsed.get('wall_time'),
            'wall_time_units': 's',
        }
        if 'energy' in parsed:
            results['energy'] = parsed['energy'] * units.Hartree
            results['energy_units'] = 'eV'
        if 'mulliken_charges' in parsed:
            results['mulliken_charges'] = parsed['mulliken_charges']
            results['mulliken_charges_units'] = 'e'
        try:
            dipole = self._dipole(parsed)
        except ValueError as exception:
            self.logger.warning(f'No dipole: {exception}')
            dipole = None
        if dipole is not None:
            results['dipole'] = dipole.tolist()
            results['dipole_units'] = 'e*Angstrom'
            if parsed.get('dipole_periodic'):
                results['dipole_periodic'] = True
        if corrections is not None:
            results['custodian_status'] = corrections.get('status')
            results['custodian_message'] = corrections.get('message')
            results['corrections'] = corrections.get('corrections', [])
            results['corrections_refused'] = corrections.get('refused', [])
            results['n_corrections'] = len(results['corrections'])
            results['cp2k_seconds'] = corrections.get('cp2k_seconds')
            results['runner_seconds'] = corrections.get('runner_seconds')
        if 'energy' not in parsed:
            return results
        results['level_of_theory'] = level_of_theory(self.node.inputs.parameters.get_dict())
        return results

    def _dipole(self, parsed: dict) -> np.ndarray | None:
        """The dipole label (e·Å, (3,)): Berry-phase dipoles of periodic cells folded onto one branch."""
        atoms = self.node.inputs.structure.get_ase()
        cell = np.asarray(atoms.cell) if bool(np.all(atoms.pbc)) else None
        dipole = cp2k_bec.dipole_from_output(parsed, atoms.positions, cell)
        if dipole is not None and cell is not None:
            if not parsed.get('dipole_periodic'):
                raise ValueError('CP2K printed a non-periodic dipole for a periodic cell.')
            dipole = nearest_image(dipole, cell)
        return dipole

    def _check_consistency(self, corrections: dict) -> str | None:
        """Compare the runner's initial/final computed-settings hashes with the one rebuilt from the inputs."""
        inputs = self.node.inputs
        expected = settings_sha1(
            build_cp2k_input(
                inputs.structure.get_ase(),
                inputs.parameters.get_dict(),
                total_charge=inputs.total_charge.value,
                multiplicity=inputs.multiplicity.value,
            )
        )
        initial = corrections.get('computed_settings_sha1_initial')
        final = corrections.get('computed_settings_sha1_final')
        if initial != expected:
            return f'the job ran an input whose computed settings ({initial}) differ from the inputs ({expected})'
        if final != expected:
            return f'corrections changed the computed settings ({expected} -> {final})'
        return None

    def _attach_labels(self, parsed: dict, results: dict) -> ExitCode | None:
        missing = [key for key in ('energy', 'forces') if key not in parsed]
        atoms = self.node.inputs.structure.get_ase()
        periodic = bool(np.all(atoms.pbc))
        if periodic and 'stress' not in parsed:
            missing.append('stress')
        if missing:
            self.logger.error(f'Missing from the CP2K output: {missing}')
            return self.exit_codes.ERROR_OUTPUT_STDOUT_PARSE
        for key, unit in _EXPECTED_UNITS.items():
            if key in parsed and parsed[key] != unit:
                return self.exit_codes.ERROR_UNEXPECTED_UNITS.format(message=f'{key} is {parsed[key]!r}, not {unit!r}')
        energy = parsed['energy'] * units.Hartree
        forces = np.asarray(parsed['forces'], dtype=float) * (units.Hartree / units.Bohr)
        if forces.shape != (len(atoms), 3):
            message = f'forces of shape {forces.shape} for {len(atoms)} atoms'
            return self.exit_codes.ERROR_OUTPUT_INCONSISTENT.format(message=message)
        stress = None
        if periodic:
            stress = -np.asarray(parsed['stress'], dtype=float) * units.GPa
        charges = parsed.get('mulliken_charges')
        if charges is not None and len(charges) != len(atoms):
            message = f'{len(charges)} Mulliken charges for {len(atoms)} atoms'
            return self.exit_codes.ERROR_OUTPUT_INCONSISTENT.format(message=message)
        inputs = self.node.inputs
        parameters = inputs.parameters.get_dict()
        try:
            dipole = self._dipole(parsed)
        except ValueError as exception:
            return self.exit_codes.ERROR_OUTPUT_INCONSISTENT.format(message=str(exception))
        if dipole is None and (parameters.get('dipole') or parameters.get('bec')):
            self.logger.error('The dipole was requested but CP2K printed none.')
            return self.exit_codes.ERROR_OUTPUT_STDOUT_PARSE
        bec = None
        if parameters.get('bec'):
            bec = self._born_charges(atoms, results)
            if isinstance(bec, ExitCode):
                return bec
        frame = labelled_frame(
            atoms,
            energy,
            forces,
            level_of_theory(inputs.parameters.get_dict()),
            stress=stress,
            charges=charges,
            dipole=dipole,
            bec=bec,
            total_charge=inputs.total_charge.value,
            multiplicity=inputs.multiplicity.value,
        )
        # Outputs only once every label is read: a failed Born-charge step leaves no partial label behind.
        self.out('forces', _array('forces', forces))
        if stress is not None:
            self.out('stress', _array('stress', stress))
        if bec is not None:
            self.out('born_charges', _array('born_charges', bec))
        self.out('labelled', LesDatasetData.from_ase([frame]))
        return None

    def _born_charges(self, atoms, results: dict) -> np.ndarray | ExitCode:
        """Z* (e, (n_atoms, 3, 3)) from ``bec.json``, after checking it used the label's computed settings.

        Adds to ``results`` the displacement, the number of single points, their CP2K time and the largest
        violation of the acoustic sum rule ``sum_k Z*_k = Q I`` (e).
        """
        inputs = self.node.inputs
        retrieved = self.retrieved
        try:
            record = json.loads(retrieved.base.repository.get_object_content(cp2k_bec.RECORD_FILE))
        except (OSError, FileNotFoundError, json.JSONDecodeError):
            return self.exit_codes.ERROR_BEC_FILE_MISSING
        if record.get('status') != 'ok':
            return self.exit_codes.ERROR_BEC_FAILED.format(message=f'{record.get("status")}: {record.get("message")}')
        label_input = build_cp2k_input(
            atoms,
            inputs.parameters.get_dict(),
            total_charge=inputs.total_charge.value,
            multiplicity=inputs.multiplicity.value,
        )
        expected = cp2k_bec.displacement_settings_sha1(
            cp2k_bec.displaced_input(label_input, np.zeros((len(atoms), 3)), project='bec')
        )
        if record.get('settings_sha1') != expected:
            message = f'displaced single points ran settings {record.get("settings_sha1")}, expected {expected}'
            return self.exit_codes.ERROR_LABEL_INCONSISTENT.format(message=message)
        periodic = bool(np.all(atoms.pbc))
        try:
            bec = cp2k_bec.born_charges_from_record(
                record, atoms.positions, np.asarray(atoms.cell) if periodic else None
            )
        except ValueError as exception:
            return self.exit_codes.ERROR_BEC_FAILED.format(message=str(exception))
        violation = acoustic_sum_rule_violation(bec, inputs.total_charge.value)
        results.update(
            {
                'bec_displacement': record['displacement'],
                'bec_displacement_units': 'Angstrom',
                'bec_evaluations': len(record['evaluations']),
                'bec_seconds': record.get('cp2k_seconds'),
                'bec_acoustic_sum_rule_violation': violation,
                'bec_units': 'e',
            }
        )
        return bec


def _array(name: str, values: np.ndarray) -> orm.ArrayData:
    array = orm.ArrayData()
    array.set_array(name, np.asarray(values, dtype=float))
    return array
