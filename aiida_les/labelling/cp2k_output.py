"""Parse the text output of a CP2K ENERGY_FORCE run (energy, forces, stress, Mulliken charges, dipole, SCF, timing).

Values are returned in CP2K's own units, with the unit strings read from the output so that callers can check them:
energy in Hartree, forces in Hartree/bohr, stress in GPa, dipole in Debye (:data:`DEBYE_IN_E_ANGSTROM` converts).

Dipoles, as CP2K 2023.1 prints them (``&DFT &PRINT &MOMENTS``):

- GFN1-xTB: ``TB_DIPOLE| Dipole type`` (``non-periodic`` or ``periodic (Berry phase)``) and ``TB_DIPOLE| Moment
  [Debye]``. It is the dipole of the Mulliken charges as point charges (flagged ``dipole_point_charges``); for
  periodic cells CP2K wraps each atom into the cell around the origin first, ``fold(sum_j q_j (s_j - round(s_j)) A)``
  (checked against CP2K's output in the tests), so with fractional charges it jumps by ``q_j R`` when atom j crosses
  a cell face: not a polarization quantum;
- Quickstep (GPW): ``ELECTRIC/MAGNETIC MOMENTS``, for periodic cells ``Dipole vectors are based on the periodic
  (Berry phase) operator. They are defined modulo integer multiples of the cell matrix [Debye].``, then
  ``Dipole moment [Debye]`` and a line ``X= ... Y= ... Z= ... Total= ...``.

Berry-phase dipoles are flagged ``dipole_periodic``; their branch is handled by
:mod:`aiida_les.labelling.polarization`. This module must not import aiida (the custodian runner uses it inside the
job).
"""

from __future__ import annotations

import re

__all__ = ('DEBYE_IN_E_ANGSTROM', 'mentions_out_of_memory', 'parse_cp2k_output')

#: 1 Debye in e·Å (CP2K converts its atomic-unit dipole with 1 e·bohr = 2.54174623 Debye).
DEBYE_IN_E_ANGSTROM = 0.20819433622

_FLOAT = r'[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?'
_RE_ENERGY = re.compile(rf'ENERGY\| Total FORCE_EVAL \( QS \) energy \[(?P<unit>[^\]]+)\]:\s+(?P<value>{_FLOAT})')
_RE_SCF_CONVERGED = re.compile(r'\*\*\* SCF run converged in\s+(\d+) steps \*\*\*')
_RE_SCF_NOT_CONVERGED = re.compile(r'SCF run NOT converged')
_RE_OUTER_NOT_CONVERGED = re.compile(r'outer SCF loop FAILED to converge|OUTER SCF NOT CONVERGED', re.IGNORECASE)
_RE_WALLTIME = re.compile(r'^ CP2K\s+1\s+\S+\s+\S+\s+\S+\s+\S+\s+(?P<total>' + _FLOAT + r')')
_RE_VERSION = re.compile(r'CP2K\| version string:\s+(?P<version>.+)')
_RE_ENDED = re.compile(r'PROGRAM ENDED AT')
_RE_WALLTIME_HIT = re.compile(r'(?:GLOBAL\| Walltime exceeded|Maximum walltime exceeded|WALLTIME exceeded)', re.I)
_RE_BERRY = re.compile(
    r'TB_DIPOLE\| Dipole type\s+periodic \(Berry phase\)|based on the periodic \(Berry phase\) operator'
)
_RE_OOM = re.compile(r'out of memory|cannot allocate memory|std::bad_alloc|insufficient memory', re.IGNORECASE)


def mentions_out_of_memory(text: str) -> bool:
    """Return True if ``text`` (CP2K output, its standard error or a launcher log) reports a failed allocation."""
    return bool(_RE_OOM.search(text))


_RE_ABORT_ART = re.compile(r'^(?:\[ABORT\]|\\___/|O/\||/\| \||/ \\|\|)\s*')


def _abort_message(block: list[str]) -> str:
    """Return the text of CP2K's ABORT box (message and source location) without the ASCII art."""
    parts = []
    for row in block:
        text = _RE_ABORT_ART.sub('', row.strip().strip('*').strip())
        if text:
            parts.append(text)
    return ' '.join(parts)


def _to_float(text: str) -> float:
    return float(text.replace('D', 'E').replace('d', 'e'))


def _parse_forces(lines: list[str], start: int) -> tuple[list[list[float]], str]:
    """Parse the ``ATOMIC FORCES in [a.u.]`` block starting at line ``start``; return forces and unit."""
    unit = re.search(r'\[([^\]]+)\]', lines[start]).group(1)
    forces = []
    for line in lines[start + 1 :]:
        if line.strip().startswith('SUM OF ATOMIC FORCES'):
            break
        fields = line.split()
        if len(fields) == 6 and fields[0].isdigit():
            forces.append([_to_float(x) for x in fields[3:6]])
    return forces, unit


def _parse_stress(lines: list[str], start: int) -> tuple[list[list[float]], str]:
    """Parse the ``STRESS| Analytical stress tensor [GPa]`` block starting at ``start``; return tensor and unit."""
    unit = re.search(r'\[([^\]]+)\]', lines[start]).group(1)
    rows = {}
    for line in lines[start + 2 : start + 5]:
        fields = line.split()
        rows[fields[1]] = [_to_float(x) for x in fields[2:5]]
    return [rows['x'], rows['y'], rows['z']], unit


def _parse_mulliken(lines: list[str], start: int) -> list[float]:
    """Parse the Mulliken table starting at ``start``; return net charges (e) in atom order.

    Restricted runs have columns (atom, element, kind, population, net charge); unrestricted runs have (atom,
    element, kind, population alpha, population beta, net charge, spin moment). GFN1-xTB lists the atoms grouped
    by kind (1, 3, 5, ..., then 2, 4, ...), so the charges are placed by the atom number of the first column.
    """
    charges: dict[int, float] = {}
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if stripped.startswith('# Total charge'):
            break
        fields = stripped.split()
        if not fields or not fields[0].isdigit():
            continue
        charges[int(fields[0])] = _to_float(fields[5] if len(fields) >= 7 else fields[-1])
    return [charges[index] for index in sorted(charges)]


def _parse_dipole(lines: list[str], index: int) -> tuple[list[float], str, bool] | None:
    """Return (dipole, unit, point_charges) if line ``index`` starts a printed dipole, else None."""
    line = lines[index]
    if line.startswith(' TB_DIPOLE| Moment [Debye]'):
        return [_to_float(x) for x in line.split(']')[-1].split()[:3]], 'Debye', True
    if line.strip().startswith('Dipole moment [Debye]') and index + 1 < len(lines):
        values = re.findall(rf'([XYZ])=\s*({_FLOAT})', lines[index + 1])
        if len(values) >= 3:
            return [_to_float(v) for _, v in values[:3]], 'Debye', False
    return None


def parse_cp2k_output(text: str) -> dict:
    """Parse CP2K output text into a dictionary (CP2K units, unit strings included).

    Keys: ``completed`` (bool, 'PROGRAM ENDED' reached), ``cp2k_version``, ``energy`` and ``energy_unit``,
    ``forces`` (list n_atoms x 3) and ``forces_unit``, ``stress`` (3 x 3) and ``stress_unit`` (periodic only),
    ``mulliken_charges`` (n_atoms), ``dipole`` (3), ``dipole_unit`` and ``dipole_periodic`` (True for a Berry-phase
    dipole, defined modulo e times a lattice vector) and ``dipole_point_charges`` (True for GFN1-xTB's Mulliken
    point-charge dipole) when moments are printed, ``scf_converged``
    (list of bool, one per SCF run), ``scf_steps`` (list of int, steps of converged runs), ``wall_time`` (s, from
    the timing report), ``walltime_exceeded``, ``out_of_memory`` and ``aborted`` (bool), ``abort_message``.
    Blocks that appear more than once keep the last occurrence.
    """
    lines = text.splitlines()
    result: dict = {
        'completed': bool(_RE_ENDED.search(text)),
        'scf_converged': [],
        'scf_steps': [],
        'walltime_exceeded': bool(_RE_WALLTIME_HIT.search(text)),
        'out_of_memory': bool(_RE_OOM.search(text)),
        'aborted': False,
    }
    for index, line in enumerate(lines):
        if match := _RE_ENERGY.search(line):
            result['energy'] = _to_float(match.group('value'))
            result['energy_unit'] = match.group('unit')
        elif match := _RE_SCF_CONVERGED.search(line):
            result['scf_converged'].append(True)
            result['scf_steps'].append(int(match.group(1)))
        elif _RE_SCF_NOT_CONVERGED.search(line):
            result['scf_converged'].append(False)
        elif line.strip().startswith('ATOMIC FORCES in'):
            result['forces'], result['forces_unit'] = _parse_forces(lines, index)
        elif line.startswith(' STRESS| Analytical stress tensor'):
            result['stress'], result['stress_unit'] = _parse_stress(lines, index)
        elif 'MULLIKEN POPULATION ANALYSIS' in line.upper():
            result['mulliken_charges'] = _parse_mulliken(lines, index)
        elif (dipole := _parse_dipole(lines, index)) is not None:
            result['dipole'], result['dipole_unit'], result['dipole_point_charges'] = dipole
            result['dipole_periodic'] = any(_RE_BERRY.search(row) for row in lines[max(0, index - 8) : index])
        elif match := _RE_VERSION.search(line):
            result['cp2k_version'] = match.group('version').strip()
        elif line.startswith(' CP2K ') and (match := _RE_WALLTIME.search(line)):
            result['wall_time'] = _to_float(match.group('total'))
        elif '[ABORT]' in line or line.strip().startswith('*** ABORT'):
            result['aborted'] = True
            result['abort_message'] = _abort_message(lines[index : index + 6])
    if _RE_OUTER_NOT_CONVERGED.search(text):
        result['scf_converged'].append(False)
    return result
