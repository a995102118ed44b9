r"""Born effective charges and the non-analytic correction (NAC) of phonons: charges from a calculator, the
dielectric tensor, phonopy's NAC parameters and the expansion from the primitive to the unit cell.

Units: Born charges in e, the NAC factor in eV Å / e^2 (:math:`k_e = 1 / (4 \pi \varepsilon_0)`), the dielectric
tensor dimensionless. The acoustic sum rule and the ``1 / sqrt(eps_inf)`` screening come from
:mod:`les_model.electrostatics.polarization`.
"""

from __future__ import annotations

import ase
import numpy as np
from phonopy import Phonopy
from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

from les_model.electrostatics.polarization import (
    acoustic_sum_rule_violation,
    divide_by_sqrt_eps_inf,
    enforce_acoustic_sum_rule,
)
from les_model.units import COULOMB_CONSTANT

__all__ = ['born_charges_from_calculator', 'dielectric_tensor', 'nac_parameters', 'unitcell_born_from_primitive']


def born_charges_from_calculator(
    atoms: ase.Atoms,
    calculator,
    eps_inf: float | None = None,
    scale_by_eps_inf: bool = False,
    enforce_asr: bool = True,
) -> np.ndarray:
    """Born effective charges of the unit cell predicted by a calculator that gives ``'bec'`` (e.g. LesCalculator).

    :param atoms: unit cell.
    :param calculator: ASE calculator with ``'bec'`` in its results, (N, 3, 3) ``Z[i, a, b] = d mu_a / d r_ib``.
    :param eps_inf: scalar high-frequency dielectric constant (only used with ``scale_by_eps_inf``).
    :param scale_by_eps_inf: divide by ``sqrt(eps_inf)``: latent charges learned from energies and forces alone are
        screened point charges; this turns their BEC into an estimate of the physical Z*.
    :param enforce_asr: subtract the mean so that ``sum_i Z*_i = 0``.
    :return: (N, 3, 3) Born effective charges in e.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    calculator.calculate(atoms, properties=['energy', 'forces', 'bec'])
    born = np.array(calculator.results['bec'], dtype=float).reshape(len(atoms), 3, 3)
    if scale_by_eps_inf:
        if eps_inf is None or not eps_inf > 0:
            raise ValueError(f'scale_by_eps_inf needs eps_inf > 0, got {eps_inf}')
        born = divide_by_sqrt_eps_inf(born, eps_inf)
    if enforce_asr:
        born = enforce_acoustic_sum_rule(born)
    return born


def dielectric_tensor(eps_inf) -> np.ndarray:
    """The (3, 3) high-frequency dielectric tensor of a positive scalar or a positive-definite (3, 3) ``eps_inf``."""
    eps = np.asarray(eps_inf, dtype=float)
    if eps.ndim == 0:
        eps = np.eye(3) * float(eps)
    if eps.shape != (3, 3) or not np.all(np.linalg.eigvalsh(0.5 * (eps + eps.T)) > 0):
        raise ValueError(f'eps_inf must be a positive scalar or a positive-definite 3x3 tensor, got {eps_inf}')
    return eps


def nac_parameters(
    phonon: Phonopy,
    born: np.ndarray,
    eps_inf,
    factor: float = COULOMB_CONSTANT,
    enforce_asr: bool = True,
    symmetrize: bool = True,
    asr_tolerance: float = 1e-3,
) -> dict:
    """Non-analytic-correction parameters for phonopy from unit-cell Born charges, and attach them.

    :param phonon: from :func:`create_phonopy`.
    :param born: (N_unitcell, 3, 3) Born effective charges in e of the unit cell given to :func:`create_phonopy`.
    :param eps_inf: high-frequency dielectric constant, scalar or (3, 3).
    :param factor: unit factor ``k_e`` in eV Å / e^2.
    :param enforce_asr: enforce the acoustic sum rule (per-cell mean removed) before symmetrising.
    :param symmetrize: symmetrise Z* and eps_inf with the crystal's site symmetries (phonopy).
    :param asr_tolerance: largest allowed ``|sum_i Z*_i|`` (e) of the result when ``enforce_asr``.
    :return: ``{'born': (N_primitive, 3, 3), 'dielectric': (3, 3), 'factor': float}`` (also set on ``phonon``).
    """
    n_unit = len(phonon.unitcell)
    born = np.asarray(born, dtype=float)
    if born.shape != (n_unit, 3, 3):
        raise ValueError(f'born must have shape ({n_unit}, 3, 3) (unit cell), got {born.shape}')
    eps = dielectric_tensor(eps_inf)
    if enforce_asr:
        born = enforce_acoustic_sum_rule(born)
    if symmetrize:
        born_p, eps = symmetrize_borns_and_epsilon(
            born,
            eps,
            phonon.unitcell,
            primitive_matrix=phonon.primitive_matrix,
            supercell_matrix=phonon.supercell_matrix,
            symprec=phonon.symmetry.tolerance,
        )
    else:
        # atoms of the primitive cell are the first images of unit-cell atoms in the supercell
        born_p = born[phonon.supercell.u2u_map[phonon.primitive.p2s_map]]
    if enforce_asr:
        violation = acoustic_sum_rule_violation(born_p)
        if violation > asr_tolerance:
            raise ValueError(f'acoustic sum rule violated by {violation:.3g} e after enforcement (> {asr_tolerance})')
    params = {'born': np.asarray(born_p), 'dielectric': np.asarray(eps), 'factor': float(factor)}
    phonon.nac_params = params
    return params


def unitcell_born_from_primitive(phonon: Phonopy, born_primitive: np.ndarray) -> np.ndarray:
    """Expand Born charges of the primitive cell to every atom of the unit cell (atoms related by translations).

    :param born_primitive: (N_primitive, 3, 3) Born charges in e.
    :return: (N_unitcell, 3, 3) Born charges in e.
    """
    born_primitive = np.asarray(born_primitive, dtype=float)
    n_prim = len(phonon.primitive)
    if born_primitive.shape != (n_prim, 3, 3):
        raise ValueError(f'born_primitive must have shape ({n_prim}, 3, 3), got {born_primitive.shape}')
    supercell_index = phonon.supercell.u2s_map
    primitive_index = [phonon.primitive.p2p_map[phonon.primitive.s2p_map[s]] for s in supercell_index]
    return born_primitive[primitive_index]
