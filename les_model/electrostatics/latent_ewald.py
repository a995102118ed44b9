r"""LatentEwald: the Latent Ewald Summation (LES) long-range energy of learned (latent) charges.

Periodic structures (tin-foil boundary, k = 0 term excluded, i.e. a neutralising background for charged cells):

.. math::

    E = \frac{1}{2 V \varepsilon_0} \sum_{0 < |k| < k_c} w(|k|) \frac{e^{-\sigma^2 k^2 / 2}}{k^2} |S(k)|^2
        - \frac{k_e}{\sqrt{2 \pi} \sigma} \sum_i q_i^2,
    \qquad S(k) = \sum_i q_i e^{i k \cdot r_i}

with :math:`1 / \varepsilon_0 = 4 \pi k_e`, so the prefactor is :math:`2 \pi k_e / V` (eV with Å and e),
:math:`k_c = 2 \pi / d_l` and :math:`w` a smooth switch (cosine over ``switch_width * k_c`` below :math:`k_c`, or a
step when ``smooth_k=False``). The subtracted term is the self interaction of each Gaussian charge with itself, the
:math:`k_c \to \infty` limit of the :math:`i = j` terms. With it removed the energy tends, as the box grows, to the
non-periodic form used for molecules:

.. math::

    E = \sum_{i < j} k_e q_i q_j \operatorname{erf}(r_{ij} / (\sqrt{2} \sigma)) / r_{ij}.

Slabs (two periodic directions) use the periodic sum in the vacuum-padded cell plus the Yeh-Berkowitz correction of
:mod:`les_model.electrostatics.slab`.

The k-space sum is evaluated directly (cost O(N K), K ~ V k_c^3: fine for training-size cells) or, for large cells,
on a mesh (:mod:`les_model.electrostatics.mesh`, O(N log N), relative deviation from the direct sum ~1e-5 with the
defaults).
"""

import math

import torch

from les_model.electrostatics.dispatch import BatchedElectrostatics
from les_model.electrostatics.kernels import gaussian_self_energy
from les_model.electrostatics.kspace import kspace_energy
from les_model.electrostatics.mesh import mesh_les_energy
from les_model.electrostatics.realspace import gaussian_pair_energy

__all__ = ['LatentEwald']


class LatentEwald(BatchedElectrostatics):
    """LES long-range energy of latent charges, batched over periodic, slab and non-periodic structures.

    :param sigma: Gaussian smearing width in Å (> 0).
    :param dl: real-space resolution in Å; the k cutoff is ``k_c = 2 pi / dl``.
    :param smooth_k: switch the k-space sum smoothly to zero near ``k_c`` so the energy is continuous (and
        differentiable) when the cell changes; ``False`` gives the hard cutoff of the original formula.
    :param switch_width: width of the switch as a fraction of ``k_c`` (0 < switch_width <= 1).
    :param remove_self_interaction: subtract the Gaussian self energy ``k_e sum q^2 / (sqrt(2 pi) sigma)`` in
        periodic structures.
    :param backend: ``'direct'`` k-space sum, ``'mesh'`` (particle-mesh) or ``'auto'`` (mesh from ``mesh_threshold``
        atoms in a structure on).
    :param mesh_threshold: number of atoms from which ``'auto'`` uses the mesh.
    :param mesh_factor: mesh oversampling of the largest Miller index (see
        :func:`~les_model.electrostatics.mesh.mesh_shape`).
    :param interpolation_nodes: B-spline order of the mesh interpolation (1 to 5).
    """

    def __init__(
        self,
        sigma: float = 1.0,
        dl: float = 2.0,
        smooth_k: bool = True,
        switch_width: float = 0.2,
        remove_self_interaction: bool = True,
        backend: str = 'auto',
        mesh_threshold: int = 1000,
        mesh_factor: float = 1.5,
        interpolation_nodes: int = 5,
    ):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f'sigma must be > 0 Å, got {sigma}')
        if not dl > 0:
            raise ValueError(f'dl must be > 0 Å, got {dl}')
        if smooth_k and not 0 < switch_width <= 1:
            raise ValueError(f'switch_width must be in (0, 1] (fraction of k_c), got {switch_width}')
        self.sigma = float(sigma)
        self.dl = float(dl)
        self.smooth_k = bool(smooth_k)
        self.switch_width = float(switch_width)
        self.remove_self_interaction = bool(remove_self_interaction)
        if backend not in ('auto', 'direct', 'mesh'):
            raise ValueError(f"backend must be 'auto', 'direct' or 'mesh', got {backend!r}")
        self.backend = backend
        self.mesh_threshold = int(mesh_threshold)
        self.mesh_factor = float(mesh_factor)
        self.interpolation_nodes = int(interpolation_nodes)

    @property
    def k_cut(self) -> float:
        """The k-space cutoff ``2 pi / dl`` in 1/Å."""
        return 2.0 * math.pi / self.dl

    def extra_repr(self) -> str:
        """The settings shown by ``print(module)``."""
        return (
            f'sigma={self.sigma}, dl={self.dl}, smooth_k={self.smooth_k}, switch_width={self.switch_width}, '
            f'backend={self.backend!r}'
        )

    def uses_mesh(self, n_atoms: int) -> bool:
        """Whether a periodic structure of ``n_atoms`` atoms is evaluated on the mesh."""
        return self.backend == 'mesh' or (self.backend == 'auto' and n_atoms >= self.mesh_threshold)

    def periodic_energy(self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """LES energy of one 3D-periodic structure in eV.

        :param positions: (n, 3) positions in Å.
        :param charges: (n,) charges in e.
        :param cell: (3, 3) lattice vectors as rows in Å.
        :return: scalar energy in eV.
        """
        k_cut = self.k_cut
        width = self.switch_width * k_cut if self.smooth_k else 0.0
        if self.uses_mesh(positions.shape[0]):
            return mesh_les_energy(
                positions,
                charges,
                cell,
                self.sigma,
                k_cut,
                width,
                remove_self_interaction=self.remove_self_interaction,
                mesh_factor=self.mesh_factor,
                interpolation_nodes=self.interpolation_nodes,
                coulomb_constant=self.coulomb_constant,
            )
        # half-space sum counts each (k, -k) pair once: 2 * (2 pi k_e / V) = 4 pi k_e / V
        energy = kspace_energy(positions, charges, cell, self.sigma, k_cut, width, self.coulomb_constant)
        if self.remove_self_interaction:
            energy = energy - gaussian_self_energy(charges, self.sigma, self.coulomb_constant)
        return energy

    def pair_energy(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Non-periodic LES energy in eV: the erf pair sum (the large-box limit of the periodic one)."""
        return gaussian_pair_energy(positions, charges, self.sigma, self.coulomb_constant)
