"""LES reciprocal-space energy on a mesh (particle-mesh evaluation of the LatentEwald sum, O(N log N)).

The charges are spread on a regular mesh with cardinal B-splines of order ``p`` (:class:`BSplineStencil`), Fourier
transformed, multiplied by the LES kernel divided by the squared B-spline transform (the smooth-PME deconvolution,
aliasing neglected)

.. math::

    \\tilde G(m) = \\frac{G(k_m)}{\\prod_a \\operatorname{sinc}^{2p}(\\pi m_a / n_a)}, \\qquad
    G(k) = 4 \\pi \\frac{e^{-\\sigma^2 k^2 / 2}}{k^2} w(|k|), \\quad G(0) = 0,

for Miller indices :math:`m` on an :math:`n_1 \\times n_2 \\times n_3` mesh, and
:math:`E = \\frac{k_e}{2 V} \\sum_m \\tilde G(m) |\\hat\\rho(m)|^2` (equal to gathering the mesh potential back to the
atoms with the same B-splines, at the cost of one FFT) minus the Gaussian self energy.
The mesh resolves Miller indices up to ``mesh_factor`` times the largest one of the direct sum (:func:`mesh_size`), so
every k-vector of the direct sum is represented. Measured deviation from the direct sum (random charges, 400 to 2000
atoms): ~5e-6 relative with the defaults (``mesh_factor=1.5``, ``p=5``), ~1e-4 with ``mesh_factor=1``, ``p=4``;
forces ~4e-4 relative RMS. The energy is smooth in the positions (B-splines of order p are C^(p-2)); as a function
of the cell it jumps by about that accuracy when the mesh size (an integer) changes, unlike the direct sum with a
smooth k cutoff.
"""

import math

import torch

from les_model.electrostatics.kspace import reciprocal_cell, switching_weight
from les_model.units import COULOMB_CONSTANT

__all__ = [
    'BSplineStencil',
    'bspline_stencil',
    'les_kernel',
    'mesh_energy_with_kernel',
    'mesh_kgrid',
    'mesh_les_energy',
    'mesh_reciprocal_energy',
    'mesh_shape',
    'mesh_size',
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
    """:func:`mesh_size` as a list of three ints (TorchScript-compatible)."""
    lengths = torch.linalg.norm(cell.detach(), dim=1)
    return [
        _next_smooth(max(min_points, 2 * math.ceil(mesh_factor * k_cut * float(length) / (2.0 * math.pi)) + 2))
        for length in lengths.unbind(0)
    ]


def mesh_size(cell: torch.Tensor, k_cut: float, mesh_factor: float, min_points: int = 16) -> torch.Tensor:
    """Mesh points per axis so that Miller indices up to ``mesh_factor * k_cut |a_i| / (2 pi)`` are resolved.

    :param cell: (3, 3) lattice vectors as rows in Å.
    :param k_cut: cutoff in 1/Å.
    :param mesh_factor: oversampling of the largest Miller index (>= 1).
    :param min_points: smallest mesh size per axis (small cells: keeps the B-spline aliasing error small).
    :return: (3,) int64 mesh sizes (2-3-5 smooth).
    """
    return torch.tensor(mesh_shape(cell, k_cut, mesh_factor, min_points), dtype=torch.int64, device=cell.device)


def bspline_stencil(
    positions: torch.Tensor, cell: torch.Tensor, shape: list[int], order: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat mesh indices (n p^3,) and weights (n, p^3) of the B-spline assignment (see :class:`BSplineStencil`)."""
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


class BSplineStencil:
    """Cardinal B-spline charge assignment of order ``p`` on a periodic mesh (spread and gather, differentiable).

    A point at mesh coordinate ``u = s * n`` (``s`` fractional) gets weights ``M_p(u - k)`` on the ``p`` mesh points
    ``k = floor(u) - j``, ``j = 0 .. p - 1``, per axis; the 3D weights are the products (``p^3`` points per atom).

    :param positions: (n, 3) positions in Å.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param ns: (3,) mesh points per axis.
    :param order: B-spline order p (2 to 6).
    """

    def __init__(self, positions: torch.Tensor, cell: torch.Tensor, ns: torch.Tensor, order: int):
        if order not in (2, 3, 4, 5, 6):
            raise ValueError(f'B-spline order must be 2 to 6, got {order}')
        self.shape = tuple(int(n) for n in ns.tolist())
        self.index, self.weights = bspline_stencil(positions, cell, list(self.shape), order)

    def spread(self, values: torch.Tensor) -> torch.Tensor:
        """:param values: (n,) per-atom values. :return: mesh of shape ``ns``."""
        return spread_on_mesh(self.index, self.weights, values, list(self.shape))

    def gather(self, mesh: torch.Tensor) -> torch.Tensor:
        """:param mesh: mesh of shape ``ns``. :return: (n,) interpolated values."""
        return (mesh.reshape(-1)[self.index].reshape(self.weights.shape) * self.weights).sum(dim=1)


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


def mesh_energy_with_kernel(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    kernel: torch.Tensor,
    shape: list[int],
    order: int,
    coulomb_constant: float = COULOMB_CONSTANT,
) -> torch.Tensor:
    """``(k_e / 2V) sum_m kernel(m) |rho_hat(m)|^2`` for a deconvolved kernel on the ``rfftn`` layout, in eV."""
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


def mesh_reciprocal_energy(
    positions: torch.Tensor,
    charges: torch.Tensor,
    cell: torch.Tensor,
    kernel_fn,
    ns: torch.Tensor,
    order: int = 5,
) -> torch.Tensor:
    """``(k_e / 2V) sum_{k != 0} G(k) |S(k)|^2`` on a B-spline mesh (smooth-PME), in eV, without any self term.

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param kernel_fn: ``G(k_sq)`` in Å^2 for k_sq > 0 (a tensor function), e.g. ``4 pi exp(-k^2 s^2 / 2) / k^2``.
    :param ns: (3,) mesh points per axis (see :func:`mesh_size`).
    :param order: B-spline order p (2 to 6).
    :return: scalar energy in eV.
    """
    if order not in (2, 3, 4, 5, 6):
        raise ValueError(f'B-spline order must be 2 to 6, got {order}')
    shape = [int(n) for n in ns.tolist()]
    safe, nonzero, bspline = mesh_kgrid(cell, shape, order)
    kernel = torch.where(nonzero, kernel_fn(safe) / bspline, torch.zeros_like(safe))
    return mesh_energy_with_kernel(positions, charges, cell, kernel, shape, order)


def les_kernel(k_sq: torch.Tensor, sigma: float, k_cut: float, width: float) -> torch.Tensor:
    """LES kernel ``G(k) = 4 pi exp(-sigma^2 k^2 / 2) / k^2 w(|k|)`` in Å^2 for ``k_sq`` (> 0) in 1/Å^2."""
    weight = switching_weight(torch.sqrt(k_sq), k_cut, width)
    return 4.0 * math.pi * torch.exp(-0.5 * sigma**2 * k_sq) / k_sq * weight


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

    :param positions: (n, 3) positions in Å.
    :param charges: (n,) charges in e.
    :param cell: (3, 3) lattice vectors as rows in Å.
    :param sigma: Gaussian width in Å.
    :param k_cut: k cutoff in 1/Å.
    :param width: switching width in 1/Å.
    :param remove_self_interaction: subtract ``k_e sum q^2 / (sqrt(2 pi) sigma)``.
    :param mesh_factor: oversampling of the largest Miller index of the direct sum (>= 1).
    :param interpolation_nodes: B-spline order p (2 to 6).
    :param coulomb_constant: k_e in eV Å / e^2 (an argument so that TorchScript sees it).
    :return: scalar energy in eV.
    """
    if mesh_factor < 1:
        raise ValueError('mesh_factor must be >= 1')
    shape = mesh_shape(cell, k_cut, mesh_factor)
    safe, nonzero, bspline = mesh_kgrid(cell, shape, interpolation_nodes)
    kernel = torch.where(nonzero, les_kernel(safe, sigma, k_cut, width) / bspline, torch.zeros_like(safe))
    energy = mesh_energy_with_kernel(positions, charges, cell, kernel, shape, interpolation_nodes, coulomb_constant)
    if remove_self_interaction:
        energy = energy - coulomb_constant / (math.sqrt(2.0 * math.pi) * sigma) * (charges * charges).sum()
    return energy
