r"""Branch handling of Berry-phase dipoles and Born effective charges by central finite differences (numpy).

Units: dipoles in e·Å, displacements in Å, cells in Å (lattice vectors as rows, ase convention), Born charges in e.

The Berry-phase dipole of a periodic cell, :math:`\mu = V P`, is only defined modulo the polarization quantum
:math:`e R` (any lattice vector :math:`R = \sum_a n_a a_a`). Two rules fix the branch here:

* a stored dipole is *folded* so that its lattice coordinates :math:`s = \mu A^{-1}` lie in :math:`[-1/2, 1/2)`
  (:func:`les_model.electrostatics.polarization.nearest_image`, used by the parser); the quantum is the cell itself,
  which every frame carries;
* a finite difference :math:`\mu(+h) - \mu(-h)` is reduced to its *minimum image* (nearest lattice vector
  removed), which puts both displaced dipoles on one branch whenever :math:`|Z^* 2h|` is far below half a lattice
  vector (0.02 e·Å against several e·Å in practice).

Born effective charges :math:`Z^*_{k,ab} = \partial \mu_a / \partial u_{k,b} = (V/e) \partial P_a / \partial
u_{k,b}` are returned as ``(n_atoms, 3, 3)`` arrays indexed ``[k, a, b]`` (a: dipole component, b: displacement
direction), the layout of ``les_model`` (stored flattened row-major as ``(n_atoms, 9)`` in extxyz). This module
must not import aiida.
"""

from __future__ import annotations

import numpy as np

from les_model.electrostatics.polarization import nearest_image

__all__ = ('central_difference_born_charges', 'minimum_image_difference')


def minimum_image_difference(delta: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    """Remove from dipole differences ``delta`` (e·Å, shape (..., 3)) the nearest polarization quantum e·R.

    With ``cell`` None (a molecule) ``delta`` is returned unchanged.
    """
    delta = np.asarray(delta, dtype=float)
    if cell is None:
        return delta.copy()
    return nearest_image(delta, cell)


def central_difference_born_charges(
    plus: np.ndarray, minus: np.ndarray, displacement: float, cell: np.ndarray | None = None
) -> np.ndarray:
    """Born effective charges from dipoles of structures with one atom displaced by ±h along x, y, z.

    :param plus: dipoles (e·Å), shape (n_atoms, 3, 3) indexed ``[k, b, a]``: component a of the dipole with atom k
        moved by +h along direction b.
    :param minus: the same for -h.
    :param displacement: h in Å.
    :param cell: lattice vectors as rows (Å) for Berry-phase dipoles (differences taken at minimum image), None for
        molecules.
    :return: Z* in e, shape (n_atoms, 3, 3) indexed ``[k, a, b]``.
    """
    plus = np.asarray(plus, dtype=float)
    minus = np.asarray(minus, dtype=float)
    if plus.shape != minus.shape or plus.ndim != 3 or plus.shape[1:] != (3, 3):
        raise ValueError(f'plus and minus must both have shape (n_atoms, 3, 3), got {plus.shape} and {minus.shape}.')
    if displacement <= 0:
        raise ValueError(f'displacement must be > 0, got {displacement}.')
    delta = minimum_image_difference(plus - minus, cell)
    return np.swapaxes(delta, 1, 2) / (2.0 * displacement)
