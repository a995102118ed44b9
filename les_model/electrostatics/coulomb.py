r"""CoulombEnergy: exact point-charge Coulomb energy of a batch, choosing Ewald, PME or a direct sum per structure.

* 3D-periodic structures: Ewald summation (:mod:`les_model.electrostatics.ewald`) below ``pme_threshold`` atoms,
  particle-mesh Ewald (:mod:`les_model.electrostatics.pme`) from there on (``method='auto'``), tin-foil boundary,
  neutralising background for a net charge.
* Slabs (two periodic directions, vacuum along the third): the 3D sum in the vacuum-padded cell plus the
  Yeh-Berkowitz dipole correction (:mod:`les_model.electrostatics.slab`).
* Non-periodic structures: the direct pair sum :math:`\sum_{i<j} k_e q_i q_j / r_{ij}`.

The batching and the choice by periodicity are those of
:class:`~les_model.electrostatics.dispatch.BatchedElectrostatics`.
"""

from __future__ import annotations

import torch

from les_model.electrostatics.dispatch import BatchedElectrostatics
from les_model.electrostatics.ewald import ewald_energy
from les_model.electrostatics.pme import pme_energy
from les_model.electrostatics.realspace import gaussian_pair_energy

__all__ = ['CoulombEnergy']

_METHODS = ('auto', 'ewald', 'pme')


class CoulombEnergy(BatchedElectrostatics):
    """Converged point-charge Coulomb energy in eV, batched (see :meth:`BatchedElectrostatics.forward`).

    :param method: ``'auto'`` (Ewald below ``pme_threshold`` atoms, PME above), ``'ewald'`` or ``'pme'``.
    :param accuracy: requested accuracy for Ewald (see :func:`les_model.electrostatics.ewald.ewald_parameters`).
    :param pme_accuracy: requested accuracy for PME (see :func:`les_model.electrostatics.pme.pme_parameters`).
    :param pme_threshold: number of atoms from which ``'auto'`` uses PME.
    """

    def __init__(
        self,
        method: str = 'auto',
        accuracy: float = 1e-8,
        pme_accuracy: float = 1e-5,
        pme_threshold: int = 500,
    ):
        super().__init__()
        if method not in _METHODS:
            raise ValueError(f'method must be one of {_METHODS}, got {method!r}')
        self.method = method
        self.accuracy = float(accuracy)
        self.pme_accuracy = float(pme_accuracy)
        self.pme_threshold = int(pme_threshold)

    def periodic_method(self, n_atoms: int) -> str:
        """The method used for a periodic structure of ``n_atoms`` atoms: ``'ewald'`` or ``'pme'``."""
        if self.method != 'auto':
            return self.method
        return 'pme' if n_atoms >= self.pme_threshold else 'ewald'

    def pair_energy(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Bare point-charge pair sum ``sum_{i<j} k_e q_i q_j / r_ij`` in eV of one non-periodic structure."""
        return gaussian_pair_energy(positions, charges, sigma=0.0)

    def periodic_energy(self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Ewald or PME energy in eV of one 3D-periodic structure (see :meth:`periodic_method`)."""
        if self.periodic_method(positions.shape[0]) == 'pme':
            return pme_energy(positions, charges, cell, accuracy=self.pme_accuracy)
        return ewald_energy(positions, charges, cell, accuracy=self.accuracy)
