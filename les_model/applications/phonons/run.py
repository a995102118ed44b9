"""``run_phonons``: the whole phonon calculation in one call (set-up, forces, Born charges, NAC, spectra, files).

A thin composition of :mod:`.compute` (phonopy set-up, force constants, frequencies, bands, DOS), :mod:`.born`
(Born charges and the non-analytic correction) and :mod:`.files` (phonopy files and PNG plots), kept for its callers
(the AiiDA phonon workchain and ``benchmarks/phonons.py``); use those pieces directly for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np

from les_model.applications.phonons.born import born_charges_from_calculator, dielectric_tensor
from les_model.applications.phonons.compute import PhononResult, attach_force_sets, compute_phonons, create_phonopy
from les_model.applications.phonons.files import write_phonon_outputs
from les_model.units import COULOMB_CONSTANT

__all__ = ['run_phonons']


def run_phonons(
    atoms: ase.Atoms,
    calculator=None,
    force_sets: np.ndarray | dict | None = None,
    supercell_matrix=2,
    primitive_matrix='auto',
    displacement: float = 0.01,
    born: np.ndarray | None = None,
    eps_inf=None,
    born_from_calculator: bool = False,
    scale_by_eps_inf: bool = False,
    nac_factor: float = COULOMB_CONSTANT,
    q_direction: Sequence[float] = (1.0, 0.0, 0.0),
    band_npoints: int = 51,
    dos_mesh: float | Sequence[int] | None = 20,
    output_dir: str | Path | None = None,
) -> PhononResult:
    """Phonons of a crystal from a calculator or given force sets, with the NAC when Born charges are available.

    :param atoms: unit cell.
    :param calculator: ASE calculator for the displaced supercells (and for Born charges with
        ``born_from_calculator``); not needed when ``force_sets`` is given.
    :param force_sets: forces or a phonopy dataset (see :func:`~.compute.attach_force_sets`).
    :param supercell_matrix: see :func:`~.compute.create_phonopy`.
    :param primitive_matrix: see :func:`~.compute.create_phonopy`.
    :param displacement: displacement amplitude in Å.
    :param born: (N_unitcell, 3, 3) Born charges in e; NAC is applied when given (or computed) with ``eps_inf``.
    :param eps_inf: high-frequency dielectric constant, scalar or (3, 3).
    :param born_from_calculator: compute ``born`` with the calculator (``'bec'`` result, ASR enforced).
    :param scale_by_eps_inf: divide calculator Born charges by ``sqrt(eps_inf)`` (see
        :func:`~.born.born_charges_from_calculator`).
    :param nac_factor: Coulomb constant of the NAC in eV Å / e^2.
    :param q_direction: direction (reduced coordinates) along which Gamma is approached for the LO modes.
    :param band_npoints: q-points per band segment (0 = no band structure).
    :param dos_mesh: q-point mesh of the DOS (None = no DOS).
    :param output_dir: write phonopy files and PNG plots there.
    :return: :class:`~.compute.PhononResult`.
    """
    phonon = create_phonopy(atoms, supercell_matrix, primitive_matrix, displacement)
    attach_force_sets(phonon, calculator, force_sets)
    if born_from_calculator:
        if calculator is None:
            raise ValueError('born_from_calculator needs a calculator')
        scalar_eps = None if eps_inf is None else float(np.trace(dielectric_tensor(eps_inf)) / 3.0)
        born = born_charges_from_calculator(atoms, calculator, scalar_eps, scale_by_eps_inf)
    result = compute_phonons(phonon, born, eps_inf, nac_factor, q_direction, band_npoints, dos_mesh)
    if output_dir is not None:
        write_phonon_outputs(result, output_dir, title=atoms.get_chemical_formula())
    return result
