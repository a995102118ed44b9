"""Born effective charges of a CP2K label by central finite differences of the dipole, run inside the job.

After the label run has converged, ``les-cp2k`` writes one single point per atom k, Cartesian direction b and sign
(``6 N`` inputs under ``bec/``), each the final label input (after SCF corrections) with atom k moved by ±h along
b, and runs them all in one CP2K process through CP2K's ``FARMING`` (one CP2K start instead of 6N: with ``mpirun``
each start costs about 3 s here, more than a GFN1-xTB single point). Only the coordinates, the run type
(``ENERGY``), the project name, the print level, the SCF restart and the printing of restart files differ from the
label input; the record keeps the hash of the computed settings shared by all 6N inputs (coordinates and project
left out) so that the parser can check it against the CalcJob inputs. Each displaced SCF starts from the label's
converged wavefunction (``SCF_GUESS RESTART``), which changes how, not what, is computed.

The record (``bec.json``) holds, for each displaced single point: ``atom``, ``direction`` (0, 1, 2), ``sign`` (+1,
-1), ``energy`` (Hartree), ``dipole`` (Debye, as printed), ``dipole_periodic``, ``dipole_point_charges``,
``mulliken_charges`` (e), ``scf_converged`` and ``completed``;
plus ``status`` (``ok``, ``scf_not_converged``, ``cp2k_failed``, ``time_budget_exceeded``), ``message``,
``displacement`` (h, Å), ``settings_sha1`` and ``cp2k_seconds``. :func:`born_charges_from_record` turns it into
Z* (e) with :mod:`aiida_les.labelling.polarization`.

Which dipole is differentiated (:func:`dipole_from_output`, also the dipole label of the parser):

- molecules: CP2K's printed dipole (about the origin; neutral molecules do not depend on it);
- periodic GPW: CP2K's Berry-phase dipole; it is continuous in the positions up to jumps of e times a lattice
  vector, which the minimum-image difference removes;
- periodic GFN1-xTB: CP2K prints the Berry phase of the Mulliken charges with every atom first wrapped into the cell
  around the origin, which jumps by the non-quantized ``q_j R`` whenever atom j crosses a cell face (an atom at the
  face, like Cl in rock-salt NaCl at s = 1/2, jumps within ±h). We use instead ``sum_j q_j r_j`` of the same Mulliken
  charges at the positions of the frame, the same number up to those jumps and the convention of
  ``les_model.nn.response.polarization``; its derivative is smooth.

CP2K's own linear response for atomic polar tensors (``RUN_TYPE LINEAR_RESPONSE``, ``&PROPERTIES &LINRES &DCDR``)
was tried with CP2K 2023.1: for GFN1-xTB it aborts (``CPASSERT failed`` in ``dcdr_env_init``); for PBE water with the
Martyna-Tuckerman solver the response solver went to NaN for some perturbations and had not finished after 5 min.
The finite differences work for both methods, so they are the one path here. This module must not import aiida.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import time

import numpy as np

from .cp2k_input import render_cp2k_input, settings_sha1
from .cp2k_output import DEBYE_IN_E_ANGSTROM, parse_cp2k_output
from .polarization import central_difference_born_charges

__all__ = (
    'BEC_DIRECTORY',
    'FARMING_INPUT',
    'FARMING_OUTPUT',
    'RECORD_FILE',
    'born_charges_from_record',
    'dipole_from_output',
    'displaced_input',
    'displacement_settings_sha1',
    'run_bec',
)

BEC_DIRECTORY = 'bec'
FARMING_INPUT = 'bec_farm.inp'
FARMING_OUTPUT = 'bec_farm.out'
FARMING_STDERR = 'bec_farm.err'
RECORD_FILE = 'bec.json'
_AXES = 'xyz'


def dipole_from_output(parsed: dict, positions: np.ndarray, cell: np.ndarray | None) -> np.ndarray | None:
    """Return the dipole (e·Å, shape (3,), not folded) of one parsed CP2K output, or None if none was printed.

    :param parsed: :func:`~aiida_les.labelling.cp2k_output.parse_cp2k_output` of the run (or a ``bec.json`` entry).
    :param positions: positions of the structure that was run (Å, (n_atoms, 3)), in the frame's convention.
    :param cell: lattice vectors as rows (Å) for periodic structures, else None.
    :raises ValueError: for a unit other than Debye, or Mulliken charges that do not match the positions.
    """
    if parsed.get('dipole') is None:
        return None
    if parsed.get('dipole_unit') != 'Debye':
        raise ValueError(f'CP2K printed the dipole in {parsed.get("dipole_unit")!r}, expected Debye.')
    if cell is not None and parsed.get('dipole_periodic') and parsed.get('dipole_point_charges'):
        charges = np.asarray(parsed.get('mulliken_charges') or [], dtype=float)
        if charges.shape != (len(positions),):
            raise ValueError(f'{charges.size} Mulliken charges for {len(positions)} atoms.')
        return charges @ np.asarray(positions, dtype=float)
    return np.asarray(parsed['dipole'], dtype=float) * DEBYE_IN_E_ANGSTROM


def _coordinates(sections: dict) -> tuple[list[str], np.ndarray]:
    """Return the symbols and positions (Å, shape (n_atoms, 3)) of the ``COORD`` lines of a nested input."""
    symbols, positions = [], []
    for line in sections['FORCE_EVAL']['SUBSYS']['COORD']['_lines']:
        fields = line.split()
        symbols.append(fields[0])
        positions.append([float(x) for x in fields[1:4]])
    return symbols, np.asarray(positions, dtype=float)


def displaced_input(sections: dict, shift: np.ndarray, project: str, restart_file: str | None = None) -> dict:
    """Return the single-point input of the label ``sections`` with atoms moved by ``shift`` (Å, (n_atoms, 3)).

    The run type becomes ``ENERGY`` (the dipole needs no forces or stress) and the dipole stays printed; with
    ``restart_file`` the SCF starts from that wavefunction. Computed settings are otherwise those of ``sections``.
    """
    symbols, positions = _coordinates(sections)
    moved = positions + np.asarray(shift, dtype=float)
    result = copy.deepcopy(sections)
    result['GLOBAL'].update({'PROJECT': project, 'RUN_TYPE': 'ENERGY', 'PRINT_LEVEL': 'LOW'})
    force_eval = result['FORCE_EVAL']
    force_eval.pop('STRESS_TENSOR', None)
    force_eval.pop('PRINT', None)
    dft = force_eval['DFT']
    if 'MOMENTS' not in dft.get('PRINT', {}):
        raise ValueError('The label input prints no dipole (&DFT &PRINT &MOMENTS): set `dipole` or `bec`.')
    scf = dft.setdefault('SCF', {})
    # 6N restart files would only fill the disk: the displaced wavefunctions are never reused.
    scf.setdefault('PRINT', {})['RESTART'] = {'_': 'OFF'}
    if restart_file:
        dft['WFN_RESTART_FILE_NAME'] = restart_file
        scf['SCF_GUESS'] = 'RESTART'
    else:
        # A restart named by an SCF correction of the label run lives one directory up: start from scratch.
        dft.pop('WFN_RESTART_FILE_NAME', None)
        if scf.get('SCF_GUESS') == 'RESTART':
            scf.pop('SCF_GUESS')
    force_eval['SUBSYS']['COORD']['_lines'] = [
        f'{s} {x:.10f} {y:.10f} {z:.10f}' for s, (x, y, z) in zip(symbols, moved, strict=True)
    ]
    return result


def displacement_settings_sha1(sections: dict) -> str:
    """Hash of the computed settings of a displaced input, coordinates and project name left out.

    Equal for all 6N inputs made from one label input, and for the label input rebuilt from the CalcJob inputs.
    """
    template = copy.deepcopy(sections)
    template.get('GLOBAL', {}).pop('PROJECT', None)
    template['FORCE_EVAL']['SUBSYS'].pop('COORD', None)
    return settings_sha1(template)


def _farming_input(jobs: list[str]) -> str:
    farm = {
        'GLOBAL': {'PROJECT': 'bec_farm', 'PROGRAM_NAME': 'FARMING', 'RUN_TYPE': 'NONE'},
        'FARMING': {
            'NGROUPS': 1,
            'JOB': [
                {
                    'JOB_ID': index + 1,
                    'DIRECTORY': BEC_DIRECTORY,
                    'INPUT_FILE_NAME': f'{name}.inp',
                    'OUTPUT_FILE_NAME': f'{name}.out',
                }
                for index, name in enumerate(jobs)
            ],
        },
    }
    return render_cp2k_input(farm)


def _stop(process: subprocess.Popen) -> None:
    """Stop this farming run's own process (never anything else)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_bec(
    sections: dict,
    cp2k_command: list[str],
    displacement: float,
    directory: str | os.PathLike = '.',
    deadline: float | None = None,
) -> dict:
    """Run the 6N displaced single points of the label input ``sections`` in ``directory``; write the record.

    :param sections: the final (converged) label input, nested dictionary.
    :param cp2k_command: CP2K command line, MPI launcher included; ``-i <farming input>`` is appended.
    :param displacement: h in Å.
    :param deadline: ``time.time()`` after which CP2K is stopped (status ``time_budget_exceeded``).
    :return: the record written to ``bec.json`` (see module docstring).
    """
    directory = pathlib.Path(directory)
    (directory / BEC_DIRECTORY).mkdir(exist_ok=True)
    _, positions = _coordinates(sections)
    project = str(sections['GLOBAL'].get('PROJECT', 'aiida'))
    restart = f'../{project}-RESTART.wfn' if (directory / f'{project}-RESTART.wfn').is_file() else None
    evaluations, names, hashes = [], [], set()
    for atom in range(len(positions)):
        for direction in range(3):
            for sign in (1, -1):
                name = f'a{atom:04d}_{_AXES[direction]}{"p" if sign > 0 else "m"}'
                shift = np.zeros_like(positions)
                shift[atom, direction] = sign * displacement
                job = displaced_input(sections, shift, project=name, restart_file=restart)
                hashes.add(displacement_settings_sha1(job))
                (directory / BEC_DIRECTORY / f'{name}.inp').write_text(render_cp2k_input(job))
                names.append(name)
                evaluations.append({'name': name, 'atom': atom, 'direction': direction, 'sign': sign})
    (directory / FARMING_INPUT).write_text(_farming_input(names))

    status, message = 'ok', ''
    started = time.perf_counter()
    with (
        open(directory / FARMING_OUTPUT, 'w') as stdout,
        open(directory / FARMING_STDERR, 'w') as stderr,
    ):
        process = subprocess.Popen([*cp2k_command, '-i', FARMING_INPUT], cwd=directory, stdout=stdout, stderr=stderr)
        try:
            process.wait(timeout=None if deadline is None else max(deadline - time.time(), 1.0))
        except subprocess.TimeoutExpired:
            _stop(process)
            status, message = 'time_budget_exceeded', 'The time budget ran out during the displaced single points.'
    seconds = time.perf_counter() - started

    for entry in evaluations:
        output = directory / BEC_DIRECTORY / f'{entry["name"]}.out'
        parsed = parse_cp2k_output(output.read_text(errors='replace')) if output.is_file() else {}
        entry['completed'] = bool(parsed.get('completed'))
        entry['scf_converged'] = bool(parsed.get('scf_converged')) and all(parsed['scf_converged'])
        entry['energy'] = parsed.get('energy')
        entry['dipole'] = parsed.get('dipole')
        entry['dipole_unit'] = parsed.get('dipole_unit')
        entry['dipole_periodic'] = parsed.get('dipole_periodic')
        entry['dipole_point_charges'] = parsed.get('dipole_point_charges')
        entry['mulliken_charges'] = parsed.get('mulliken_charges')
    if status == 'ok':
        incomplete = [e['name'] for e in evaluations if not e['completed'] or e['dipole'] is None]
        unconverged = [e['name'] for e in evaluations if e['completed'] and not e['scf_converged']]
        if incomplete:
            status = 'cp2k_failed'
            message = f'{len(incomplete)} displaced single points ended without a dipole, first {incomplete[0]}.'
        elif unconverged:
            status = 'scf_not_converged'
            message = f'The SCF of {len(unconverged)} displaced single points did not converge: {unconverged[:5]}.'
    record = {
        'status': status,
        'message': message,
        'displacement': float(displacement),
        'displacement_units': 'Angstrom',
        'settings_sha1': hashes.pop() if len(hashes) == 1 else None,
        'restart_wavefunction': restart,
        'cp2k_seconds': round(seconds, 3),
        'evaluations': evaluations,
    }
    (directory / RECORD_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    return record


def born_charges_from_record(record: dict, positions: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    """Return Z* (e, shape (n_atoms, 3, 3) indexed [k, a, b]) from a ``bec.json`` record.

    :param positions: positions of the labelled structure (Å, (n_atoms, 3)); every atom, direction and sign must be
        in the record.
    :param cell: lattice vectors as rows (Å) for periodic structures, else None.
    :raises ValueError: when an evaluation is missing or lacks its dipole.
    """
    positions = np.asarray(positions, dtype=float)
    n_atoms = len(positions)
    displacement = float(record['displacement'])
    plus = np.full((n_atoms, 3, 3), np.nan)
    minus = np.full((n_atoms, 3, 3), np.nan)
    for entry in record['evaluations']:
        moved = positions.copy()
        moved[entry['atom'], entry['direction']] += entry['sign'] * displacement
        dipole = dipole_from_output(entry, moved, cell)
        if dipole is None:
            raise ValueError(f'Displaced single point {entry.get("name")} has no dipole.')
        target = plus if entry['sign'] > 0 else minus
        target[entry['atom'], entry['direction']] = dipole
    if np.isnan(plus).any() or np.isnan(minus).any():
        raise ValueError(f'The record does not cover all {6 * n_atoms} displacements of {n_atoms} atoms.')
    return central_difference_born_charges(plus, minus, displacement, cell)
