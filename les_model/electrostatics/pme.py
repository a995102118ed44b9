r"""Particle-mesh Ewald (PME): point-charge Coulomb energy of one 3D-periodic structure in O(N log N).

Same splitting as :mod:`les_model.electrostatics.ewald` with a Gaussian smearing
:math:`\sigma = 1 / (\sqrt{2} \alpha)`: the real-space part
:math:`\frac{k_e}{2} \sum' q_i q_j \operatorname{erfc}(r / (\sqrt{2}\sigma)) / r` runs over a vesin
neighbour list (:mod:`les_model.electrostatics.realspace`), plus the self term
:math:`-k_e \sum_i q_i^2 / (\sqrt{2\pi}\sigma)` and the neutralising background :math:`-\pi k_e Q^2 \sigma^2 / V`;
the reciprocal part is smooth PME with B-spline charge assignment and deconvolution,
:func:`les_model.electrostatics.mesh.mesh_energy` (the same code as the LES mesh), on a 2-3-5-smooth mesh that
resolves all k with :math:`e^{-\sigma^2 k^2 / 2} > \epsilon`.

(torch-pme's ``PMECalculator`` was a second implementation here; ``benchmarks/electrostatics.py --pme-table``
measured it 3 to 20 times slower than this one at 768 to 12288 atoms, so it is only a reference in the benchmark and
the tests.)

Parameters follow from a requested accuracy :math:`\epsilon` (size of the neglected terms relative to
:math:`k_e \sum_i q_i^2`) with :math:`p = \sqrt{-\ln \epsilon}` and a fixed real-space cutoff :math:`r_c`:
:math:`\sigma = r_c / (\sqrt{2} p)` and :math:`k_{max} = \sqrt{2} p / \sigma`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from les_model.data.neighborlist import NeighborList
from les_model.electrostatics.ewald import point_charge_periodic_energy
from les_model.electrostatics.mesh import mesh_energy, mesh_shape
from les_model.electrostatics.validation import check_charges_shape

__all__ = ['PMEParameters', 'pme_energy', 'pme_parameters']


class PMEParameters(NamedTuple):
    """PME convergence parameters.

    :ivar smearing: Gaussian smearing (splitting) width sigma in Å.
    :ivar r_cut: real-space cutoff in Å.
    :ivar k_max: largest wavevector resolved by the mesh in 1/Å.
    :ivar mesh_factor: oversampling of the largest Miller index.
    :ivar order: B-spline order (2 to 6).
    """

    smearing: float
    r_cut: float
    k_max: float
    mesh_factor: float
    order: int


def pme_parameters(accuracy: float = 1e-5, r_cut: float = 5.0) -> PMEParameters:
    """Choose PME parameters from a requested accuracy and a real-space cutoff.

    Mesh settings are calibrated on random charges in triclinic cells (float64): the energy reaches about
    ``accuracy / 10`` relative to ``k_e sum q^2``.

    :param accuracy: target accuracy in (0, 1); 1e-4 to 1e-7 are typical.
    :param r_cut: real-space cutoff in Å; a fixed cutoff keeps the real-space cost linear in N.
    :return: :class:`PMEParameters`.
    """
    if not 0 < accuracy < 1:
        raise ValueError(f'accuracy must be in (0, 1), got {accuracy}')
    if not r_cut > 0:
        raise ValueError(f'r_cut must be > 0 Å, got {r_cut}')
    p = math.sqrt(-math.log(accuracy))
    smearing = r_cut / (math.sqrt(2.0) * p)
    return PMEParameters(
        smearing=smearing,
        r_cut=r_cut,
        k_max=math.sqrt(2.0) * p / smearing,
        mesh_factor=1.0 if accuracy >= 1e-5 else 1.25,
        order=5,
    )


def pme_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    accuracy: float = 1e-5,
    parameters: PMEParameters | None = None,
    nl: NeighborList | None = None,
) -> torch.Tensor:
    """Point-charge Coulomb energy of one 3D-periodic cell by PME, in eV (O(N log N)).

    The same energy and arguments as :func:`~les_model.electrostatics.ewald.ewald_energy` (``positions`` (n, 3) Å,
    ``charges`` (n,) e, ``cell`` (3, 3) Å, an optional full neighbour list ``nl``, e.g. shared with a short-range
    model), differentiable in positions, charges and cell; ``accuracy`` and ``parameters`` as in
    :func:`pme_parameters` / :class:`PMEParameters`. Returns a scalar in eV.
    """
    check_charges_shape(positions, charges)
    if parameters is None:
        parameters = pme_parameters(accuracy)
    sigma = parameters.smearing
    shape = mesh_shape(cell, parameters.k_max, parameters.mesh_factor)
    reciprocal = mesh_energy(positions, charges, cell, shape, parameters.order, sigma)
    return point_charge_periodic_energy(positions, charges, cell, sigma, parameters.r_cut, reciprocal, nl)
