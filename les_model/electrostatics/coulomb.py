"""CoulombEnergy: exact point-charge Coulomb energy of a batch, choosing Ewald, PME or a direct sum per structure.

* 3D-periodic structures: Ewald summation (:mod:`les_model.electrostatics.ewald`) below ``pme_threshold`` atoms, particle-mesh
  Ewald (:mod:`les_model.electrostatics.pme`) from there on (``method='auto'``), tin-foil boundary, neutralising background for a
  net charge.
* Slabs (two periodic directions, vacuum along the third): the 3D sum in the vacuum-padded cell plus the
  Yeh-Berkowitz dipole correction (:mod:`les_model.electrostatics.slab`).
* Non-periodic structures: the direct pair sum :math:`\\sum_{i<j} k_e q_i q_j / r_{ij}`.
"""

from __future__ import annotations

import torch

from les_model.electrostatics.ewald import ewald_energy
from les_model.electrostatics.latent_ewald import gaussian_pair_energy
from les_model.electrostatics.pme import pme_energy
from les_model.electrostatics.slab import slab_dipole_correction
from les_model.electrostatics.validation import validate_inputs

__all__ = ['CoulombEnergy']

_METHODS = ('auto', 'ewald', 'pme')


class CoulombEnergy(torch.nn.Module):
    """Converged point-charge Coulomb energy in eV, batched.

    :param method: ``'auto'`` (Ewald below ``pme_threshold`` atoms, PME above), ``'ewald'`` or ``'pme'``.
    :param accuracy: requested accuracy for Ewald (see :func:`les_model.electrostatics.ewald.ewald_parameters`).
    :param pme_accuracy: requested accuracy for PME (see :func:`les_model.electrostatics.pme.pme_parameters`).
    :param pme_threshold: number of atoms from which ``'auto'`` uses PME.
    :param pme_implementation: ``'spline'`` or ``'torchpme'`` (see :func:`les_model.electrostatics.pme.pme_energy`).
    """

    def __init__(
        self,
        method: str = 'auto',
        accuracy: float = 1e-8,
        pme_accuracy: float = 1e-5,
        pme_threshold: int = 500,
        pme_implementation: str = 'spline',
    ):
        super().__init__()
        if method not in _METHODS:
            raise ValueError(f'method must be one of {_METHODS}, got {method!r}')
        self.method = method
        self.accuracy = float(accuracy)
        self.pme_accuracy = float(pme_accuracy)
        self.pme_threshold = int(pme_threshold)
        if pme_implementation not in ('spline', 'torchpme'):
            raise ValueError(f"pme_implementation must be 'spline' or 'torchpme', got {pme_implementation!r}")
        self.pme_implementation = pme_implementation

    def periodic_method(self, n_atoms: int) -> str:
        """The method used for a periodic structure of ``n_atoms`` atoms: ``'ewald'`` or ``'pme'``."""
        if self.method != 'auto':
            return self.method
        return 'pme' if n_atoms >= self.pme_threshold else 'ewald'

    def forward(
        self,
        positions: torch.Tensor,
        charges: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        batch: torch.Tensor,
        n_structures: int,
    ) -> torch.Tensor:
        """Point-charge Coulomb energy of every structure.

        :param positions: (N, 3) positions in Å.
        :param charges: (N,) charges in e.
        :param cell: (B, 3, 3) lattice vectors as rows in Å (ignored for non-periodic structures).
        :param pbc: (B, 3) bool periodicity flags (all, two or none True).
        :param batch: (N,) int64 sorted structure index of each atom.
        :param n_structures: B.
        :return: (B,) energies in eV.
        """
        validate_inputs(positions, cell, pbc, batch, n_structures, charges=charges)
        counts = torch.bincount(batch, minlength=n_structures).tolist()
        pbc_cpu = pbc.detach().cpu()
        energies = []
        start = 0
        for s, n in enumerate(counts):
            pos, q = positions[start : start + n], charges[start : start + n]
            start += n
            n_periodic = int(pbc_cpu[s].sum())
            if n_periodic == 0:
                energies.append(gaussian_pair_energy(pos, q, sigma=0.0))
                continue
            if n_periodic == 1:
                raise ValueError(f'structure {s}: pbc {pbc_cpu[s].tolist()} (wire) is unsupported; expected 0, 2 or 3')
            if self.periodic_method(n) == 'pme':
                energy = pme_energy(pos, q, cell[s], accuracy=self.pme_accuracy, implementation=self.pme_implementation)
            else:
                energy = ewald_energy(pos, q, cell[s], accuracy=self.accuracy)
            if n_periodic == 2:
                energy = energy + slab_dipole_correction(pos, q, cell[s], pbc[s])
            energies.append(energy)
        if not energies:
            return positions.new_zeros(0)
        return torch.stack(energies)
