"""CP2K input as a nested dictionary: build it from a structure and protocol parameters, render it, fingerprint it.

The input is held as a nested ``dict`` whose keys are CP2K section and keyword names (upper case):

- a ``dict`` value is a subsection; its optional key ``'_'`` is the section parameter (``&KIND O``, ``&FORCES ON``);
- a ``list`` of ``dict`` is a repeated section (``KIND``); a ``list`` of scalars is a repeated keyword;
- the key ``'_lines'`` holds verbatim lines (coordinates);
- ``True``/``False`` render as ``.TRUE.``/``.FALSE.``.

Protocol ``parameters`` (what the CalcJob receives as a ``Dict``), all structure-independent:

- ``protocol`` (str): protocol name, e.g. ``'fast'``;
- ``method`` (str): human-readable method, e.g. ``'GFN1-xTB'`` or ``'PBE-D3(BJ)/DZVP-MOLOPT-SR-GTH/400Ry'``;
- ``xtb`` (bool): True for CP2K's GFN1-xTB (no basis sets or pseudopotentials);
- ``kinds`` (dict): element -> ``{'basis_set': ..., 'potential': ...}`` (DFT only); elements absent are refused;
- ``force_eval`` (dict): nested sections merged into ``FORCE_EVAL`` (DFT/QS/XC/MGRID/SCF settings);
- ``min_distance`` (float, Å), ``min_cell_width`` (float, Å), ``vacuum`` (float, Å): geometry checks and the box
  margin used for non-periodic structures;
- ``dipole`` (bool, default False): also label periodic cells with their Berry-phase dipole (``&MOMENTS PERIODIC``;
  molecules always get their dipole);
- ``bec`` (bool, default False): also label Born effective charges by central finite differences of the dipole
  (:mod:`aiida_les.labelling.cp2k_bec`), with ``bec_displacement`` (float, Å, default
  :data:`DEFAULT_BEC_DISPLACEMENT`); implies ``dipole``.

These three switches choose which labels are made, not how energies are computed: they stay out of
:func:`level_of_theory`, so frames labelled with and without them merge into one dataset.

This module must not import aiida (it runs inside the job).
"""

from __future__ import annotations

import copy
import hashlib
import json
import typing as t

import ase
import numpy as np

__all__ = (
    'ALLOWED_TO_CHANGE',
    'DEFAULT_BEC_DISPLACEMENT',
    'PROTECTED_INSIDE_ALLOWED',
    'build_cp2k_input',
    'changed_computed_settings',
    'computed_settings',
    'level_of_theory',
    'recursive_merge',
    'render_cp2k_input',
    'settings_sha1',
)

#: Paths a correction may change: how the SCF converges, never what is computed.
ALLOWED_TO_CHANGE: tuple[tuple[str, ...], ...] = (
    ('GLOBAL', 'WALLTIME'),
    ('GLOBAL', 'PRINT_LEVEL'),
    ('FORCE_EVAL', 'DFT', 'SCF'),
    ('FORCE_EVAL', 'DFT', 'WFN_RESTART_FILE_NAME'),
    ('FORCE_EVAL', 'DFT', 'QS', 'EPS_DEFAULT'),
)
#: Paths inside an allowed path that still change what is computed (electronic smearing changes the energy).
PROTECTED_INSIDE_ALLOWED: tuple[tuple[str, ...], ...] = (('FORCE_EVAL', 'DFT', 'SCF', 'SMEAR'),)

#: Keys of ``force_eval`` parameters that only steer SCF convergence (excluded from the level-of-theory hash).
_CONVERGENCE_ONLY = ('SCF', 'WFN_RESTART_FILE_NAME')

#: Highest atomic number covered by GFN1-xTB parameters (H to Rn).
XTB_MAX_Z = 86

#: Default atomic displacement (Å) of the finite-difference Born effective charges.
DEFAULT_BEC_DISPLACEMENT = 0.01


def recursive_merge(base: dict, update: dict) -> dict:
    """Return a deep copy of ``base`` with ``update`` merged into it, recursively for nested dictionaries."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _format_value(value: t.Any) -> str:
    if isinstance(value, bool):
        return '.TRUE.' if value else '.FALSE.'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _render_section(name: str, content: dict, indent: int, lines: list[str]) -> None:
    pad = '  ' * indent
    parameter = content.get('_')
    lines.append(f'{pad}&{name}' + (f' {_format_value(parameter)}' if parameter is not None else ''))
    for key, value in content.items():
        if key == '_':
            continue
        if key == '_lines':
            lines.extend(f'{pad}  {line}' for line in value)
        elif isinstance(value, dict):
            _render_section(key, value, indent + 1, lines)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                _render_section(key, item, indent + 1, lines)
        elif isinstance(value, list):
            lines.extend(f'{pad}  {key} {_format_value(item)}' for item in value)
        else:
            lines.append(f'{pad}  {key} {_format_value(value)}')
    lines.append(f'{pad}&END {name}')


def render_cp2k_input(sections: dict) -> str:
    """Render a nested-dictionary CP2K input (see module docstring) as CP2K input text."""
    if not isinstance(sections, dict):
        raise TypeError(f'Expected a dict of CP2K sections, got {type(sections).__name__}.')
    lines: list[str] = []
    for name, content in sections.items():
        if not isinstance(content, dict):
            raise TypeError(f'Top-level CP2K entry {name!r} must be a section (dict), got {type(content).__name__}.')
        _render_section(name, content, 0, lines)
    return '\n'.join(lines) + '\n'


def _box_for_molecule(atoms: ase.Atoms, vacuum: float, poisson_mt: bool) -> np.ndarray:
    """Return orthorhombic box lengths (Å, shape (3,)) for a non-periodic structure.

    The Martyna-Tuckerman solver needs a box at least twice the extent of the charge density, so with ``poisson_mt``
    the box is twice (extent + vacuum); otherwise extent + 2 vacuum. A larger cell given on the structure is kept.
    Lengths are rounded up to whole Å so that nearby geometries share the box (the energy depends slightly on it).
    """
    extent = np.ptp(atoms.positions, axis=0)
    if poisson_mt:
        box = 2.0 * (extent + vacuum)
    else:
        box = extent + 2.0 * vacuum
    given = np.linalg.norm(np.asarray(atoms.cell), axis=1) if atoms.cell.rank == 3 else np.zeros(3)
    # Whole Å: small displacements (finite differences, MD neighbours) keep the same box and grid.
    return np.ceil(np.maximum(box, given))


def build_cp2k_input(
    atoms: ase.Atoms,
    parameters: dict,
    total_charge: int = 0,
    multiplicity: int = 1,
    project: str = 'aiida',
) -> dict:
    """Build the nested CP2K input for an ENERGY_FORCE run of ``atoms`` with the protocol ``parameters``.

    Periodic structures (``pbc`` all True) get ``STRESS_TENSOR ANALYTICAL`` and a printed stress; non-periodic ones
    (``pbc`` all False) get ``PERIODIC NONE`` with a box from :func:`_box_for_molecule` (centred coordinates), the
    Martyna-Tuckerman Poisson solver for DFT, and a printed dipole moment. Mulliken charges are always printed.
    Periodic structures get the Berry-phase dipole (about the origin) when ``parameters['dipole']`` or
    ``parameters['bec']`` is set.

    :param atoms: the structure (positions in Å); its atom order is the order of all per-atom outputs.
    :param parameters: protocol parameters (see module docstring).
    :param total_charge: total charge of the system in e.
    :param multiplicity: spin multiplicity 2S+1; UKS is switched on when it is not 1.
    :return: nested dictionary, render it with :func:`render_cp2k_input`.
    :raises ValueError: for mixed periodicity or elements the protocol does not cover.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        raise ValueError(f'Only fully periodic or non-periodic structures are supported, got pbc={pbc.tolist()}.')
    periodic = bool(pbc.all())
    is_xtb = bool(parameters.get('xtb', False))
    symbols = atoms.get_chemical_symbols()
    kinds_table = parameters.get('kinds') or {}
    if not is_xtb:
        missing = sorted(set(symbols) - set(kinds_table))
        if missing:
            raise ValueError(
                f'Protocol has no basis set/potential for elements {missing}; covered: {sorted(kinds_table)}.'
            )

    dft: dict = {'CHARGE': int(total_charge), 'MULTIPLICITY': int(multiplicity)}
    if multiplicity != 1:
        dft['UKS'] = True
    if is_xtb:
        dft['QS'] = {'METHOD': 'XTB', 'XTB': {'DO_EWALD': periodic}}
    if not periodic and not is_xtb:
        dft['POISSON'] = {'PERIODIC': 'NONE', 'POISSON_SOLVER': 'MT'}
    dft['PRINT'] = {'MULLIKEN': {'_': 'ON'}}
    if not periodic:
        dft['PRINT']['MOMENTS'] = {'_': 'ON', 'PERIODIC': False}
    elif parameters.get('dipole') or parameters.get('bec'):
        # Berry phase (defined modulo e R); about the origin so that charged cells match sum_i q_i r_i.
        dft['PRINT']['MOMENTS'] = {'_': 'ON', 'PERIODIC': True, 'REFERENCE': 'ZERO'}

    force_eval: dict = {'METHOD': 'QUICKSTEP'}
    if periodic:
        force_eval['STRESS_TENSOR'] = 'ANALYTICAL'
    force_eval['PRINT'] = {'FORCES': {'_': 'ON'}}
    if periodic:
        force_eval['PRINT']['STRESS_TENSOR'] = {'_': 'ON'}
    force_eval['DFT'] = dft
    force_eval = recursive_merge(force_eval, parameters.get('force_eval') or {})

    if periodic:
        cell = np.asarray(atoms.cell)
        cell_section = {
            'A': ' '.join(f'{x:.10f}' for x in cell[0]),
            'B': ' '.join(f'{x:.10f}' for x in cell[1]),
            'C': ' '.join(f'{x:.10f}' for x in cell[2]),
            'PERIODIC': 'XYZ',
        }
    else:
        box = _box_for_molecule(atoms, float(parameters.get('vacuum', 5.0)), poisson_mt=not is_xtb)
        cell_section = {'ABC': ' '.join(f'{x:.6f}' for x in box), 'PERIODIC': 'NONE'}
    subsys: dict = {
        'CELL': cell_section,
        'COORD': {
            '_lines': [f'{s} {x:.10f} {y:.10f} {z:.10f}' for s, (x, y, z) in zip(symbols, atoms.positions, strict=True)]
        },
    }
    if not periodic:
        subsys['TOPOLOGY'] = {'CENTER_COORDINATES': {}}
    if not is_xtb:
        subsys['KIND'] = [
            {
                '_': element,
                'BASIS_SET': kinds_table[element]['basis_set'],
                'POTENTIAL': kinds_table[element]['potential'],
            }
            for element in sorted(set(symbols))
        ]
    force_eval['SUBSYS'] = subsys
    return {
        'GLOBAL': {'PROJECT': project, 'RUN_TYPE': 'ENERGY_FORCE', 'PRINT_LEVEL': 'MEDIUM'},
        'FORCE_EVAL': force_eval,
    }


def _drop_path(tree: dict, path: tuple[str, ...]) -> None:
    node = tree
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)


def _get_path(tree: dict, path: tuple[str, ...]) -> t.Any:
    node: t.Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def computed_settings(sections: dict) -> dict:
    """Return the part of a nested CP2K input that determines *what* is computed.

    Everything except :data:`ALLOWED_TO_CHANGE` is kept; :data:`PROTECTED_INSIDE_ALLOWED` sub-paths are kept too.
    """
    kept = copy.deepcopy(sections)
    for path in ALLOWED_TO_CHANGE:
        _drop_path(kept, path)
    for path in PROTECTED_INSIDE_ALLOWED:
        value = _get_path(sections, path)
        if value is not None:
            node = kept
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = copy.deepcopy(value)
    return kept


def _diff_paths(before: t.Any, after: t.Any, prefix: str = '') -> list[str]:
    if isinstance(before, dict) or isinstance(after, dict):
        before = {} if before is None else before
        after = {} if after is None else after
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(set(before) | set(after), key=str):
            paths += _diff_paths(before.get(key), after.get(key), f'{prefix}/{key}' if prefix else str(key))
        return paths
    return [] if before == after else [prefix or '/']


def changed_computed_settings(before: dict, after: dict) -> list[str]:
    """Return the paths (``'FORCE_EVAL/DFT/MGRID/CUTOFF'``) whose computed settings differ; empty if consistent."""
    return _diff_paths(computed_settings(before), computed_settings(after))


def settings_sha1(sections: dict) -> str:
    """Return the SHA-1 of the computed settings of a nested input (what the label depends on)."""
    return hashlib.sha1(json.dumps(computed_settings(sections), sort_keys=True).encode()).hexdigest()


def level_of_theory(parameters: dict) -> str:
    """Return the level-of-theory string of protocol ``parameters``: protocol, method and a hash of the settings.

    The hash covers everything that changes what is computed (kinds, XC, grids, xTB...) and leaves out SCF
    convergence settings, so labels from runs that converged differently still merge, while any change of method
    makes a different string (and :class:`LesDatasetData` refuses to mix them).
    """
    force_eval = copy.deepcopy(parameters.get('force_eval') or {})
    for key in _CONVERGENCE_ONLY:
        force_eval.get('DFT', {}).pop(key, None)
    smear = _get_path(parameters.get('force_eval') or {}, ('DFT', 'SCF', 'SMEAR'))
    payload = {
        'xtb': bool(parameters.get('xtb', False)),
        'kinds': parameters.get('kinds') or {},
        'force_eval': force_eval,
        'smear': smear,
    }
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
    return f'cp2k/{parameters.get("protocol", "custom")}/{parameters.get("method", "unknown")}#{digest}'
