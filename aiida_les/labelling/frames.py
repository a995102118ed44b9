"""labelled_frame: one ase.Atoms frame carrying DFT labels in the dataset's extxyz conventions.

Units: energy eV, forces eV/Å (n_atoms, 3), stress eV/Å^3 (3, 3) with ase's sign (positive = tensile, i.e.
sigma = (1/V) dE/d(strain)), charges e (n_atoms,), dipole e·Å (3,) (for periodic cells the Berry-phase dipole, i.e.
the polarization times the volume, defined modulo e times a lattice vector), Born effective charges e, stored as
the per-atom array ``bec`` of shape (n_atoms, 9): Z*[k, a, b] = d mu_a / d u_kb flattened row-major, the layout
``les_model`` reads. This module must not import aiida.
"""

from __future__ import annotations

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ('labelled_frame',)


def labelled_frame(
    atoms: ase.Atoms,
    energy: float,
    forces: np.ndarray,
    level_of_theory: str,
    stress: np.ndarray | None = None,
    charges: np.ndarray | None = None,
    dipole: np.ndarray | None = None,
    bec: np.ndarray | None = None,
    total_charge: int = 0,
    multiplicity: int = 1,
) -> ase.Atoms:
    """Return a copy of ``atoms`` labelled with energy, forces (and stress) plus metadata in ``info``.

    :param atoms: the structure that was labelled, in the order of the per-atom arrays.
    :param energy: total energy (eV).
    :param forces: forces (eV/Å), shape (n_atoms, 3).
    :param level_of_theory: the level-of-theory string (datasets refuse to mix different ones).
    :param stress: stress (eV/Å^3), shape (3, 3), ase sign; only for periodic structures.
    :param charges: per-atom partial charges (e), shape (n_atoms,), stored as array ``charges``.
    :param dipole: dipole moment (e·Å), shape (3,); for periodic structures the folded Berry-phase dipole.
    :param bec: Born effective charges (e), shape (n_atoms, 3, 3) indexed [k, a, b] or (n_atoms, 9).
    :raises ValueError: if array shapes do not match the structure.
    """
    n_atoms = len(atoms)
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (n_atoms, 3):
        raise ValueError(f'forces must have shape ({n_atoms}, 3), got {forces.shape}.')
    frame = atoms.copy()
    results = {'energy': float(energy), 'forces': forces}
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape != (3, 3):
            raise ValueError(f'stress must have shape (3, 3), got {stress.shape}.')
        results['stress'] = stress
    if charges is not None:
        charges = np.asarray(charges, dtype=float)
        if charges.shape != (n_atoms,):
            raise ValueError(f'charges must have shape ({n_atoms},), got {charges.shape}.')
        frame.arrays['charges'] = charges
    if dipole is not None:
        dipole = np.asarray(dipole, dtype=float)
        if dipole.shape != (3,):
            raise ValueError(f'dipole must have shape (3,), got {dipole.shape}.')
        frame.info['dipole'] = dipole
    if bec is not None:
        bec = np.asarray(bec, dtype=float)
        if bec.shape not in ((n_atoms, 3, 3), (n_atoms, 9)):
            raise ValueError(f'bec must have shape ({n_atoms}, 3, 3) or ({n_atoms}, 9), got {bec.shape}.')
        frame.arrays['bec'] = bec.reshape(n_atoms, 9)
    frame.info['total_charge'] = int(total_charge)
    frame.info['spin_multiplicity'] = int(multiplicity)
    frame.info['level_of_theory'] = level_of_theory
    frame.calc = SinglePointCalculator(frame, **results)
    return frame
