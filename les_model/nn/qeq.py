r"""QEq: charge equilibration with the LES (Gaussian-smeared) Coulomb kernel.

For each structure the charges minimise

.. math::

    E(q) = \sum_i \chi_i q_i + \frac{1}{2} \sum_i J_i q_i^2 + E_{lr}(q)
    \quad \text{subject to} \quad \sum_i q_i = Q,

where :math:`E_{lr}(q) = \frac{1}{2} q^T A q` is the :class:`~les_model.electrostatics.latent_ewald.LatentEwald` energy
(periodic, slab or non-periodic) written as a quadratic form. The minimiser solves the linear (KKT) system

.. math::

    \begin{pmatrix} A + \operatorname{diag}(J) & 1 \\ 1^T & 0 \end{pmatrix}
    \begin{pmatrix} q \\ \lambda \end{pmatrix} = \begin{pmatrix} -\chi \\ Q \end{pmatrix},

with :math:`-\lambda` the equalised electronegativity (chemical potential, eV/e). The solve is differentiable with
respect to :math:`\chi`, :math:`J`, positions and cell. Cost O(n^3) per structure: meant for up to a few thousand
atoms.
"""

from __future__ import annotations

import math

import torch

from les_model.electrostatics.kernels import gaussian_kspace_kernel
from les_model.electrostatics.kspace import half_space_kvectors
from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.electrostatics.slab import slab_normal
from les_model.electrostatics.validation import validate_inputs
from les_model.units import COULOMB_CONSTANT

__all__ = ['QEq', 'coulomb_matrix']


def coulomb_matrix(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, kernel: LatentEwald) -> torch.Tensor:
    """Matrix ``A`` (n, n) in eV/e^2 with ``kernel`` energy ``E(q) = q^T A q / 2`` for one structure.

    :param positions: (n, 3) positions in Å.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param pbc: (3,) bool periodicity flags (none, two or all True).
    :param kernel: the :class:`LatentEwald` whose energy is reproduced.
    :return: (n, n) symmetric matrix.
    """
    n = positions.shape[0]
    n_periodic = int(pbc.sum())
    if n_periodic == 0:
        diff = positions.unsqueeze(0) - positions.unsqueeze(1)
        eye = torch.eye(n, dtype=torch.bool, device=positions.device)
        r = torch.linalg.norm(diff + eye.unsqueeze(-1).to(positions.dtype), dim=-1)  # 1 Å on the diagonal, masked
        a = COULOMB_CONSTANT * torch.erf(r / (math.sqrt(2.0) * kernel.sigma)) / r
        return a.masked_fill(eye, 0.0)
    if n_periodic == 1:
        raise ValueError(f'pbc {pbc.tolist()} (wire) is not supported; expected 0, 2 or 3 periodic directions')
    k_cut = kernel.k_cut
    kvectors = half_space_kvectors(cell, k_cut)
    k_sq = (kvectors * kvectors).sum(dim=1)
    width = kernel.switch_width * k_cut if kernel.smooth_k else 0.0
    weights = gaussian_kspace_kernel(k_sq, kernel.sigma, k_cut, width)
    volume = torch.linalg.det(cell).abs()
    phase = positions @ kvectors.T
    cos, sin = torch.cos(phase), torch.sin(phase)
    a = (8.0 * math.pi * COULOMB_CONSTANT / volume) * ((cos * weights) @ cos.T + (sin * weights) @ sin.T)
    if kernel.remove_self_interaction:
        a = a - torch.eye(n, dtype=a.dtype, device=a.device) * (
            2.0 * COULOMB_CONSTANT / (math.sqrt(2.0 * math.pi) * kernel.sigma)
        )
    if n_periodic == 2:
        z = positions @ slab_normal(cell, pbc)
        height = volume / torch.linalg.norm(torch.linalg.cross(*cell[pbc]))
        ones = torch.ones_like(z)
        quad = torch.outer(z, z) - 0.5 * (torch.outer(ones, z * z) + torch.outer(z * z, ones))
        quad = quad - height**2 / 12.0 * torch.outer(ones, ones)
        a = a + (4.0 * math.pi * COULOMB_CONSTANT / volume) * quad
    return a


class QEq(torch.nn.Module):
    """Charge equilibration: per-atom electronegativity and hardness to charges, under a total-charge constraint.

    :param sigma: Gaussian width of the Coulomb kernel in Å (see :class:`LatentEwald`).
    :param dl: real-space resolution of the kernel in Å.
    :param smooth_k: smooth k cutoff.
    :param kernel: an existing :class:`LatentEwald` to share (overrides ``sigma``, ``dl``, ``smooth_k``).
    """

    def __init__(self, sigma: float = 1.0, dl: float = 2.0, smooth_k: bool = True, kernel: LatentEwald | None = None):
        super().__init__()
        self.kernel = kernel if kernel is not None else LatentEwald(sigma=sigma, dl=dl, smooth_k=smooth_k)

    def forward(
        self,
        electronegativity: torch.Tensor,
        hardness: torch.Tensor,
        positions: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        batch: torch.Tensor,
        n_structures: int,
        total_charge: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Equilibrated charges of every structure.

        :param electronegativity: (N,) chi_i in eV/e.
        :param hardness: (N,) J_i in eV/e^2 (positive; it must make the system matrix non-singular).
        :param positions: (N, 3) positions in Å.
        :param cell: (B, 3, 3) lattice vectors as rows in Å.
        :param pbc: (B, 3) bool periodicity flags.
        :param batch: (N,) int64 sorted structure index of each atom.
        :param n_structures: B.
        :param total_charge: (B,) total charge of each structure in e; None means neutral.
        :return: (N,) charges in e.
        """
        validate_inputs(positions, cell, pbc, batch, n_structures, charges=electronegativity)
        if hardness.shape != electronegativity.shape:
            raise ValueError(f'hardness must have shape {tuple(electronegativity.shape)}, got {tuple(hardness.shape)}')
        if total_charge is None:
            total_charge = positions.new_zeros(n_structures)
        total_charge = torch.as_tensor(total_charge, dtype=positions.dtype, device=positions.device)
        if total_charge.shape != (n_structures,):
            raise ValueError(f'total_charge must have shape ({n_structures},), got {tuple(total_charge.shape)}')
        counts = torch.bincount(batch, minlength=n_structures).tolist()
        charges = []
        start = 0
        for s, n in enumerate(counts):
            if n == 0:
                continue
            sl = slice(start, start + n)
            start += n
            a = coulomb_matrix(positions[sl], cell[s], pbc[s], self.kernel)
            system = a + torch.diag(hardness[sl])
            ones = torch.ones(n, 1, dtype=a.dtype, device=a.device)
            top = torch.cat([system, ones], dim=1)
            bottom = torch.cat([ones.T, a.new_zeros(1, 1)], dim=1)
            rhs = torch.cat([-electronegativity[sl], total_charge[s : s + 1]])
            solution = torch.linalg.solve(torch.cat([top, bottom], dim=0), rhs)
            charges.append(solution[:n])
        if not charges:
            return positions.new_zeros(0)
        return torch.cat(charges)
