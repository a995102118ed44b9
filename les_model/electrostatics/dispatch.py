"""One batched dispatcher over non-periodic (0D), slab (2D) and bulk (3D) structures.

:class:`BatchedElectrostatics` splits a batch into its structures and evaluates each by its periodicity:

* no periodic direction: :meth:`~BatchedElectrostatics.pair_energy`, a sum over all pairs;
* three: :meth:`~BatchedElectrostatics.periodic_energy`, a 3D-periodic sum (tin-foil boundary);
* two (a slab, vacuum along the third): the 3D sum in the vacuum-padded cell plus the Yeh-Berkowitz correction of
  :mod:`les_model.electrostatics.slab`;
* one (a wire): unsupported, ValueError.

Subclasses choose the kernel and the summation by implementing the two energy methods; :meth:`structure_energy`
is the TorchScript entry point for one structure.
"""

import torch

from les_model.electrostatics.slab import slab_dipole_correction
from les_model.electrostatics.validation import validate_inputs
from les_model.units import COULOMB_CONSTANT

__all__ = ['BatchedElectrostatics']


class BatchedElectrostatics(torch.nn.Module):
    """Base of the batched electrostatics modules: energies (B,) in eV of the structures of a batch."""

    def __init__(self):
        super().__init__()
        self.coulomb_constant = COULOMB_CONSTANT

    def pair_energy(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Energy in eV of one non-periodic structure (positions (n, 3) in Å, charges (n,) in e)."""
        raise NotImplementedError

    def periodic_energy(self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Energy in eV of one 3D-periodic structure (cell (3, 3), lattice vectors as rows in Å)."""
        raise NotImplementedError

    @torch.jit.export
    def structure_energy(
        self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor
    ) -> torch.Tensor:
        """Energy of one structure in eV: non-periodic, slab or 3D-periodic by ``pbc`` (TorchScript entry).

        :param positions: (n, 3) positions in Å.
        :param charges: (n,) charges in e.
        :param cell: (3, 3) lattice vectors as rows in Å (ignored when nothing is periodic).
        :param pbc: (3,) bool periodicity flags (0, 2 or 3 periodic directions).
        :return: scalar energy in eV.
        """
        n_periodic = int(pbc.sum())
        if n_periodic == 0:
            return self.pair_energy(positions, charges)
        if n_periodic == 1:
            raise ValueError('pbc with one periodic direction (wire) is unsupported; expected 0, 2 or 3')
        energy = self.periodic_energy(positions, charges, cell)
        if n_periodic == 2:
            energy = energy + slab_dipole_correction(positions, charges, cell, pbc, self.coulomb_constant)
        return energy

    @torch.jit.unused
    def forward(
        self,
        positions: torch.Tensor,
        charges: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        batch: torch.Tensor,
        n_structures: int,
    ) -> torch.Tensor:
        """Energy of every structure of a batch.

        :param positions: (N, 3) positions in Å (float32 or float64).
        :param charges: (N,) charges in e.
        :param cell: (B, 3, 3) lattice vectors as rows in Å (ignored for non-periodic structures).
        :param pbc: (B, 3) bool periodicity flags (all, two or none True).
        :param batch: (N,) int64 sorted structure index of each atom.
        :param n_structures: B.
        :return: (B,) energies in eV. Python only; TorchScript calls :meth:`structure_energy` per structure.
        """
        validate_inputs(positions, cell, pbc, batch, n_structures, charges=charges)
        counts = torch.bincount(batch, minlength=n_structures).tolist()
        pbc_cpu = pbc.detach().cpu()
        energies = []
        start = 0
        for s, n in enumerate(counts):
            pos, q = positions[start : start + n], charges[start : start + n]
            start += n
            if int(pbc_cpu[s].sum()) == 1:
                raise ValueError(f'structure {s}: pbc {pbc_cpu[s].tolist()} (wire) is unsupported; expected 0, 2 or 3')
            energies.append(self.structure_energy(pos, q, cell[s], pbc[s]))
        if not energies:
            return positions.new_zeros(0)
        return torch.stack(energies)
