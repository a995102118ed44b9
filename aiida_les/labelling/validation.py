"""Checks of a structure against protocol parameters before a labelling job is submitted.

Each check returns an error message (str) or None, so CalcJob and workchain validators can return it as is.
This module must not import aiida.
"""

from __future__ import annotations

import ase
import numpy as np
from ase.data import atomic_numbers
from ase.geometry import get_distances

from .cp2k_input import XTB_MAX_Z

__all__ = ('check_charge_multiplicity', 'check_elements', 'check_geometry', 'check_response_labels', 'check_structure')


def check_elements(atoms: ase.Atoms, parameters: dict) -> str | None:
    """Refuse elements the protocol has no basis set/pseudopotential for (GFN1-xTB covers H to Rn)."""
    symbols = set(atoms.get_chemical_symbols())
    if parameters.get('xtb'):
        beyond = sorted(s for s in symbols if atomic_numbers[s] > XTB_MAX_Z)
        if beyond:
            return f'GFN1-xTB has no parameters for elements {beyond} (covers H to Rn, Z <= {XTB_MAX_Z}).'
        return None
    kinds = parameters.get('kinds') or {}
    missing = sorted(symbols - set(kinds))
    if missing:
        protocol = parameters.get('protocol', 'custom')
        return (
            f'Protocol `{protocol}` has no basis set/pseudopotential for elements {missing}; it covers {sorted(kinds)}.'
        )
    return None


def check_geometry(atoms: ase.Atoms, parameters: dict) -> str | None:
    """Refuse NaN/inf coordinates, mixed periodicity, overlapping atoms and cells too thin for Gamma-point sampling.

    ``parameters['min_distance']`` (Å, default 0.5) bounds the shortest interatomic distance (minimum image for
    periodic cells); ``parameters['min_cell_width']`` (Å, default 4.0) bounds the perpendicular widths of a periodic
    cell: the CP2K protocols sample the Brillouin zone at the Gamma point only, which needs a cell this wide.
    """
    # NaN compares False with every bound below, so it has to be refused first.
    bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
    if bad.size:
        return f'Non-finite (NaN or inf) positions for atoms {bad.tolist()}.'
    if not np.isfinite(np.asarray(atoms.cell)).all():
        return 'Non-finite (NaN or inf) cell vectors.'
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        return f'Only fully periodic or non-periodic structures can be labelled, got pbc={pbc.tolist()}.'
    periodic = bool(pbc.all())
    if periodic:
        cell = np.asarray(atoms.cell)
        volume = abs(np.linalg.det(cell))
        if volume < 1e-6:
            return 'The structure is periodic but its cell has zero volume.'
        widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
        min_width = float(parameters.get('min_cell_width', 4.0))
        if min(widths) < min_width:
            return (
                f'Cell too small: perpendicular widths {np.round(widths, 3).tolist()} Å, expected at least '
                f'{min_width} Å for Gamma-point sampling.'
            )
    if len(atoms) > 1:
        _, distances = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        distances[np.diag_indices(len(atoms))] = np.inf
        i, j = np.unravel_index(np.argmin(distances), distances.shape)
        min_distance = float(parameters.get('min_distance', 0.5))
        if distances[i, j] < min_distance:
            return (
                f'Overlapping atoms: atoms {i} and {j} are {distances[i, j]:.3f} Å apart, expected at least '
                f'{min_distance} Å.'
            )
    return None


def check_charge_multiplicity(atoms: ase.Atoms, total_charge: int, multiplicity: int) -> str | None:
    """Refuse a spin multiplicity whose parity does not match the number of electrons, or too few electrons.

    Core electrons removed by pseudopotentials (or xTB) come in closed shells, an even number, so the parity of
    all-electron count sum(Z) - charge is the parity of the valence count.
    """
    if multiplicity < 1:
        return f'Spin multiplicity must be >= 1, got {multiplicity}.'
    n_electrons = int(np.sum(atoms.numbers)) - int(total_charge)
    if n_electrons < 0:
        return f'Total charge {total_charge} leaves {n_electrons} electrons.'
    if (n_electrons + multiplicity - 1) % 2:
        return (
            f'Multiplicity {multiplicity} impossible for {n_electrons} electrons (total charge {total_charge}): '
            f'expected an {"even" if n_electrons % 2 else "odd"} multiplicity.'
        )
    if multiplicity - 1 > n_electrons:
        return f'Multiplicity {multiplicity} needs more unpaired electrons than the {n_electrons} present.'
    return None


def check_response_labels(parameters: dict, total_charge: int) -> str | None:
    """Refuse Born effective charges of a charged structure.

    The dipole of a charged structure depends on the origin, and CP2K re-centres molecules at every displaced
    geometry, so the finite-difference Born charges would miss the ``Q I / N`` translation part.
    """
    if parameters.get('bec') and int(total_charge) != 0:
        return f'Born effective charges (`bec`) need a neutral structure, got total charge {total_charge}.'
    return None


def check_structure(atoms: ase.Atoms, parameters: dict, total_charge: int = 0, multiplicity: int = 1) -> str | None:
    """Run all checks; return the first error message, or None when the structure can be labelled."""
    return (
        check_elements(atoms, parameters)
        or check_geometry(atoms, parameters)
        or check_charge_multiplicity(atoms, total_charge, multiplicity)
        or check_response_labels(parameters, total_charge)
    )
