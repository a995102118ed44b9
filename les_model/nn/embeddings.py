"""Radial bases, smooth cutoff functions and species / total-charge / spin embeddings for the short-range host."""

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    'BesselBasis',
    'CosineCutoff',
    'GaussianBasis',
    'GlobalStateEmbedding',
    'PolynomialCutoff',
    'SpeciesIndex',
    'radial_basis',
    'cutoff_function',
]


class BesselBasis(nn.Module):
    r"""Bessel radial basis :math:`\sqrt{2/r_c}\,\sin(n\pi r/r_c)/r`, ``n = 1..n_radial``.

    :param cutoff: r_c in Å.
    :param n_radial: number of basis functions K.
    """

    def __init__(self, cutoff: float, n_radial: int):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer('frequencies', torch.arange(1, n_radial + 1, dtype=torch.float64) * math.pi / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """:param r: (E,) distances in Å. :return: (E, K) basis values in 1/Å."""
        prefactor = math.sqrt(2.0 / self.cutoff)
        return prefactor * torch.sin(r[:, None] * self.frequencies.to(r.dtype)) / r[:, None]


class GaussianBasis(nn.Module):
    """Gaussians of width ``r_c / K`` centred on ``K`` points evenly spaced in [0, r_c].

    :param cutoff: r_c in Å.
    :param n_radial: number of basis functions K.
    """

    def __init__(self, cutoff: float, n_radial: int):
        super().__init__()
        self.register_buffer('centers', torch.linspace(0.0, cutoff, n_radial, dtype=torch.float64))
        self.width = float(cutoff) / n_radial

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """:param r: (E,) distances in Å. :return: (E, K) dimensionless basis values."""
        return torch.exp(-0.5 * ((r[:, None] - self.centers.to(r.dtype)) / self.width) ** 2)


class CosineCutoff(nn.Module):
    """``0.5 (cos(pi r / r_c) + 1)`` inside the cutoff, 0 outside (continuous first derivative)."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """:param r: (E,) distances in Å. :return: (E,) weights in [0, 1]."""
        value = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        return torch.where(r < self.cutoff, value, torch.zeros_like(r))


class PolynomialCutoff(nn.Module):
    """Polynomial envelope of order p (default 6), smooth to second order at r_c.

    ``f(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``, ``x = r / r_c``.
    """

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """:param r: (E,) distances in Å. :return: (E,) weights in [0, 1]."""
        p = self.p
        x = r / self.cutoff
        value = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return torch.where(x < 1.0, value, torch.zeros_like(r))


def radial_basis(name: str, cutoff: float, n_radial: int) -> nn.Module:
    """Return the radial basis called ``name`` (``'bessel'`` or ``'gaussian'``)."""
    if name == 'bessel':
        return BesselBasis(cutoff, n_radial)
    if name == 'gaussian':
        return GaussianBasis(cutoff, n_radial)
    raise ValueError(f"radial basis must be 'bessel' or 'gaussian', got {name!r}")


def cutoff_function(name: str, cutoff: float) -> nn.Module:
    """Return the cutoff function called ``name`` (``'cosine'`` or ``'polynomial'``)."""
    if name == 'cosine':
        return CosineCutoff(cutoff)
    if name == 'polynomial':
        return PolynomialCutoff(cutoff)
    raise ValueError(f"cutoff function must be 'cosine' or 'polynomial', got {name!r}")


class SpeciesIndex(nn.Module):
    """Map atomic numbers to contiguous species indices 0..S-1.

    :param species: the S atomic numbers the model knows, in index order.
    """

    def __init__(self, species: Sequence[int]):
        super().__init__()
        if len(species) == 0:
            raise ValueError('species must list at least one atomic number, got none')
        table = torch.full((119,), -1, dtype=torch.int64)
        table[torch.as_tensor(list(species), dtype=torch.int64)] = torch.arange(len(species))
        self.register_buffer('table', table)
        self.species = tuple(int(z) for z in species)

    def forward(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """:param atomic_numbers: (N,) int64. :return: (N,) int64 species indices."""
        index = self.table[atomic_numbers]
        if bool((index < 0).any()):
            unknown = sorted({int(z) for z in atomic_numbers[index < 0].tolist()})
            raise ValueError(f'atomic numbers {unknown} are not among the model species {list(self.species)}')
        return index


class GlobalStateEmbedding(nn.Module):
    """Embed per-structure total charge Q [e] and spin S into per-atom feature offsets.

    ``g = W2 silu(W1 [Q, S])``; a disabled input is multiplied by zero so the output ignores it exactly.

    :param n_features: F, the width of the node features.
    :param use_charge: embed the total charge.
    :param use_spin: embed the spin.
    """

    def __init__(self, n_features: int, use_charge: bool, use_spin: bool):
        super().__init__()
        self.register_buffer('enabled', torch.tensor([float(use_charge), float(use_spin)]))
        self.net = nn.Sequential(nn.Linear(2, n_features), nn.SiLU(), nn.Linear(n_features, n_features))

    def forward(self, total_charge: torch.Tensor, spin: torch.Tensor) -> torch.Tensor:
        """:param total_charge: (B,) in e. :param spin: (B,). :return: (B, F) offsets."""
        state = torch.stack([total_charge, spin], dim=-1) * self.enabled.to(total_charge.dtype)
        return self.net(state) - self.net(torch.zeros_like(state))
