r"""Yeh-Berkowitz dipole correction for slabs (two periodic directions, vacuum along the third).

A slab is treated with a 3D-periodic sum in a cell padded with vacuum along the non-periodic direction, plus the
correction that removes the spurious interaction between the periodic images' dipoles (Yeh and Berkowitz, J. Chem.
Phys. 111, 3155 (1999)), with the extra terms for a net charge (Ballenegger, Arnold and Cerda, J. Chem. Phys. 131,
094107 (2009)):

.. math::

    E_{dc} = \frac{2 \pi k_e}{V} \left( M_z^2 - Q \sum_i q_i z_i^2 - Q^2 \frac{L_z^2}{12} \right)

where :math:`z` is the coordinate along the unit normal of the periodic plane, :math:`M_z = \sum_i q_i z_i`,
:math:`Q = \sum_i q_i` and :math:`L_z` the cell height along the normal. The vacuum gap should be at least as large as
the slab thickness (a few times is better) for the correction to be accurate.
"""

import math

import torch

from les_model.units import COULOMB_CONSTANT

__all__ = ['slab_dipole_correction', 'slab_normal']


def slab_normal(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """Unit normal of the plane spanned by the two periodic lattice vectors.

    :param cell: (3, 3) lattice vectors as rows in Å.
    :param pbc: (3,) bool with exactly two True entries.
    :return: (3,) unit vector.
    """
    periodic = torch.nonzero(pbc).flatten()
    if periodic.shape[0] != 2:
        raise ValueError('slab correction needs exactly 2 periodic directions')
    normal = torch.linalg.cross(cell[periodic[0]], cell[periodic[1]])
    return normal / torch.linalg.norm(normal)


def slab_dipole_correction(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    coulomb_constant: float = COULOMB_CONSTANT,
) -> torch.Tensor:
    """Dipole (and net-charge) correction energy of one slab structure, in eV.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param pbc: (3,) bool, exactly two periodic directions.
    :param coulomb_constant: k_e in eV Å / e^2 (an argument so that TorchScript sees it).
    :return: scalar energy in eV.
    """
    normal = slab_normal(cell, pbc)
    volume = torch.linalg.det(cell).abs()
    z = positions @ normal
    total_charge = charges.sum()
    dipole = (charges * z).sum()
    in_plane = cell[pbc]
    height = volume / torch.linalg.norm(torch.linalg.cross(in_plane[0], in_plane[1]))
    bracket = dipole**2 - total_charge * (charges * z**2).sum() - total_charge**2 * height**2 / 12.0
    return 2.0 * math.pi * coulomb_constant * bracket / volume
