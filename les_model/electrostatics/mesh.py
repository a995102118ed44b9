r"""LES reciprocal-space energy on a mesh (particle-mesh evaluation of the LatentEwald sum, O(N log N)).

The charges are spread on a regular mesh with cardinal B-splines of order ``p`` (:func:`bspline_stencil`), Fourier
transformed, multiplied by the LES kernel divided by the squared B-spline transform (the smooth-PME deconvolution,
aliasing neglected)

.. math::

    \tilde G(m) = \frac{G(k_m)}{\prod_a \operatorname{sinc}^{2p}(\pi m_a / n_a)}, \qquad
    G(k) = 4 \pi \frac{e^{-\sigma^2 k^2 / 2}}{k^2} w(|k|), \quad G(0) = 0,

for Miller indices :math:`m` on an :math:`n_1 \times n_2 \times n_3` mesh, and
:math:`E = \frac{k_e}{2 V} \sum_m \tilde G(m) |\hat\rho(m)|^2` (equal to gathering the mesh potential back to the
atoms with the same B-splines, at the cost of one FFT) minus the Gaussian self energy.
The mesh resolves Miller indices up to ``mesh_factor`` times the largest one of the direct sum (:func:`mesh_shape`), so
every k-vector of the direct sum is represented. Measured deviation from the direct sum (random charges, 400 to 2000
atoms): ~5e-6 relative with the defaults (``mesh_factor=1.5``, ``p=5``), ~1e-4 with ``mesh_factor=1``, ``p=4``;
forces ~4e-4 relative RMS. The energy is smooth in the positions (B-splines of order p are C^(p-2)); as a function
of the cell it jumps by about that accuracy when the mesh size (an integer) changes, unlike the direct sum with a
smooth k cutoff.
"""

import math

import torch

from les_model.electrostatics.kernels import gaussian_kspace_kernel, gaussian_self_energy
from les_model.electrostatics.kspace import reciprocal_cell
from les_model.units import COULOMB_CONSTANT

__all__ = [
    'bspline_stencil',
    'mesh_energy',
    'mesh_kgrid',
    'mesh_les_energy',
    'mesh_shape',
    'spread_on_mesh',
]


def _strip_smooth_factors(n: int) -> int:
    """``n`` divided by all its factors 2, 3 and 5."""
    for p in [2, 3, 5]:
        while n % p == 0:
            n = n // p
    return n


def _next_smooth(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    while _strip_smooth_factors(n) != 1:
        n += 1
    return n


def mesh_shape(cell: torch.Tensor, k_cut: float, mesh_factor: float, min_points: int = 16) -> list[int]:
    """Mesh points per axis (2-3-5 smooth) resolving Miller indices up to ``mesh_factor * k_cut |a_i| / (2 pi)``.

    :param cell: (3, 3) lattice vectors as rows in Å.
    :param k_cut: cutoff in 1/Å.
    :param mesh_factor: oversampling of the largest Miller index (>= 1).
    :param min_points: smallest mesh size per axis (small cells: keeps the B-spline aliasing error small).
    """
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    return [
        _next_smooth(max(min_points, 2 * math.ceil(mesh_factor * k_cut * float(length) / (2.0 * math.pi)) + 2))
        for length in lengths.unbind(0)
    ]


def bspline_stencil(
    positions: torch.Tensor, cell: torch.Tensor, shape: list[int], order: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cardinal B-spline charge assignment of order ``p`` on a periodic mesh (differentiable in positions and cell).

    A point at mesh coordinate ``u = s * n`` (``s`` fractional) gets weights ``M_p(u - k)`` on the ``p`` mesh points
    ``k = floor(u) - j``, ``j = 0 .. p - 1``, per axis; the 3D weights are the products (``p^3`` points per atom).

    :return: flat mesh indices (n p^3,) and weights (n, p^3).
    """
    if order < 2 or order > 6:
        raise ValueError('B-spline order must be 2 to 6')
    sizes = torch.tensor(shape, dtype=positions.dtype, device=positions.device)
    u = (positions @ torch.linalg.inv(cell)) * sizes
    base = torch.floor(u.detach())
    w = u - base  # (n, 3) in [0, 1), carries the gradient
    # weights[..., j] = M_p(w + j) by the recursion M_k(x) = (x M_{k-1}(x) + (k - x) M_{k-1}(x - 1)) / (k - 1)
    weights = torch.stack([w, 1.0 - w], dim=-1)
    for k in range(3, order + 1):
        x = w.unsqueeze(-1) + torch.arange(k, dtype=w.dtype, device=w.device)
        prev = torch.nn.functional.pad(weights, [0, 1])
        shifted = torch.nn.functional.pad(weights, [1, 0])
        weights = (x * prev + (k - x) * shifted) / (k - 1)
    offsets = torch.arange(order, device=positions.device)
    mesh = torch.tensor(shape, dtype=torch.int64, device=positions.device)
    index = (base.to(torch.int64).unsqueeze(-1) - offsets) % mesh[:, None]  # (n, 3, p)
    n1, n2 = shape[1], shape[2]
    flat = (index[:, 0, :, None, None] * n1 + index[:, 1, None, :, None]) * n2 + index[:, 2, None, None, :]
    products = weights[:, 0, :, None, None] * weights[:, 1, None, :, None] * weights[:, 2, None, None, :]
    return flat.reshape(-1), products.reshape(positions.shape[0], -1)


def spread_on_mesh(index: torch.Tensor, weights: torch.Tensor, values: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """:param values: (n,) per-atom values. :return: mesh of shape ``shape`` (see :func:`bspline_stencil`)."""
    contributions = (weights * values.unsqueeze(1)).reshape(-1)
    mesh = contributions.new_zeros(shape[0] * shape[1] * shape[2])
    return mesh.index_add(0, index, contributions).reshape(shape)


def mesh_kgrid(cell: torch.Tensor, shape: list[int], order: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared |k| on the ``rfftn`` layout (n1, n2, n3 // 2 + 1): ``(k_sq with 1 at k = 0, k != 0 mask, sinc^2p)``."""
    dtype, device = cell.dtype, cell.device
    n0, n1, n2 = shape[0], shape[1], shape[2]
    freqs = [
        torch.fft.fftfreq(n0, d=1.0 / n0, dtype=dtype, device=device),
        torch.fft.fftfreq(n1, d=1.0 / n1, dtype=dtype, device=device),
        torch.fft.rfftfreq(n2, d=1.0 / n2, dtype=dtype, device=device),
    ]
    # |k|^2 = m^T (B B^T) m from the reciprocal metric, built by broadcasting (no (n1, n2, n3, 3) k-vector array)
    recip = reciprocal_cell(cell)
    metric = recip @ recip.T
    m0, m1, m2 = freqs[0][:, None, None], freqs[1][None, :, None], freqs[2][None, None, :]
    k_sq = (
        metric[0, 0] * m0**2
        + metric[1, 1] * m1**2
        + metric[2, 2] * m2**2
        + 2.0 * (metric[0, 1] * m0 * m1 + metric[0, 2] * m0 * m2 + metric[1, 2] * m1 * m2)
    )
    nonzero = k_sq > 0
    safe = torch.where(nonzero, k_sq, torch.ones_like(k_sq))
    bspline = torch.ones((), dtype=dtype, device=device)
    for axis in range(3):
        m, n = freqs[axis], shape[axis]
        x = math.pi * m / n
        sinc = torch.where(x == 0, torch.ones_like(x), torch.sin(x) / torch.where(x == 0, torch.ones_like(x), x))
        view = [1, 1, 1]
        view[axis] = -1
        bspline = bspline * sinc.reshape(view) ** (2 * order)
    return safe, nonzero, bspline


def mesh_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    shape: list[int],
    order: int,
    sigma: float,
    k_cut: float = math.inf,
    width: float = 0.0,
    coulomb_constant: float = COULOMB_CONSTANT,
) -> torch.Tensor:
    """``(k_e / 2V) sum_{m != 0} 4 pi G(k_m) |S(k_m)|^2`` on a B-spline mesh in eV, without any self term.

    The mesh counterpart of :func:`~les_model.electrostatics.kspace.kspace_energy`, with the same ``positions``
    (n, 3) Å, ``charges`` (n,) e, ``cell`` (3, 3) Å, ``sigma`` Å, ``k_cut`` 1/Å (``math.inf``: every mesh wavevector)
    and ``width`` 1/Å: ``G`` is the Gaussian kernel with the (smooth) cutoff of
    :func:`~les_model.electrostatics.kernels.gaussian_kspace_kernel`, deconvolved by the B-spline transform.

    :param shape: mesh points per axis (see :func:`mesh_shape`).
    :param order: B-spline order p (2 to 6).
    :param coulomb_constant: k_e in eV Å / e^2 (an argument so that TorchScript sees it).
    :return: scalar energy in eV.
    """
    safe, nonzero, bspline = mesh_kgrid(cell, shape, order)
    kernel_values = 4.0 * math.pi * gaussian_kspace_kernel(safe, sigma, k_cut, width)
    kernel = torch.where(nonzero, kernel_values / bspline, torch.zeros_like(safe))
    index, weights = bspline_stencil(positions, cell, shape, order)
    rho_hat = torch.fft.rfftn(spread_on_mesh(index, weights, charges, shape), norm='backward')
    # sum over the full spectrum from the half (rfft) spectrum: planes 0 < m_3 < n_3 / 2 stand for their conjugates too
    multiplicity = torch.full([rho_hat.shape[2]], 2.0, dtype=kernel.dtype, device=kernel.device)
    multiplicity[0] = 1.0
    if shape[2] % 2 == 0:
        multiplicity[-1] = 1.0
    power = rho_hat.real**2 + rho_hat.imag**2
    # E = k_e / (2V) sum_m G(m) |rho_hat(m)|^2, identical to (k_e / 2) sum_i q_i phi(r_i) with the same B-splines
    return 0.5 * coulomb_constant * (kernel * multiplicity * power).sum() / torch.linalg.det(cell).abs()


def mesh_les_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    sigma: float,
    k_cut: float,
    width: float,
    remove_self_interaction: bool = True,
    mesh_factor: float = 1.5,
    interpolation_nodes: int = 5,
    coulomb_constant: float = COULOMB_CONSTANT,
) -> torch.Tensor:
    """LES energy of one 3D-periodic structure evaluated on a mesh, in eV. Differentiable in positions, charges, cell.

    ``positions`` to ``width`` as in :func:`mesh_energy`, on a mesh of :func:`mesh_shape`.

    :param remove_self_interaction: subtract ``k_e sum q^2 / (sqrt(2 pi) sigma)``.
    :param mesh_factor: oversampling of the largest Miller index of the direct sum (>= 1).
    :param interpolation_nodes: B-spline order p (2 to 6).
    :param coulomb_constant: k_e in eV Å / e^2 (an argument so that TorchScript sees it).
    :return: scalar energy in eV.
    """
    if mesh_factor < 1:
        raise ValueError('mesh_factor must be >= 1')
    shape = mesh_shape(cell, k_cut, mesh_factor)
    energy = mesh_energy(positions, charges, cell, shape, interpolation_nodes, sigma, k_cut, width, coulomb_constant)
    if remove_self_interaction:
        energy = energy - gaussian_self_energy(charges, sigma, coulomb_constant)
    return energy
