r"""Coulomb kernels: point charges and Gaussian-smeared charges (with the smooth LES k cutoff), in real and k space.

Every summation of :mod:`les_model.electrostatics` combines one of these kernels with a way to sum it:

* Gaussian charges of width :math:`\sigma` interact through :math:`\operatorname{erf}(r / (\sqrt 2 \sigma)) / r`,
  whose Fourier transform is :math:`4 \pi e^{-\sigma^2 k^2 / 2} / k^2`; the LES energy truncates it smoothly at
  :math:`k_c` with the switch :math:`w(|k|)` (:func:`gaussian_kspace_kernel`);
* point charges are split the Ewald way into the short-ranged :math:`\operatorname{erfc}(r / (\sqrt 2 \sigma)) / r`
  (:func:`erfc_kernel`) and the same Gaussian k-space kernel, with :math:`\sigma = 1 / (\sqrt 2 \alpha)` the
  splitting width (no switch: ``width = 0``);
* both periodic sums count the :math:`i = j` Gaussian self interaction, removed by :func:`gaussian_self_energy`, and
  a net charge :math:`Q` gets the neutralising background :func:`neutralising_background`.
"""

import math

import torch

__all__ = [
    'erfc_kernel',
    'gaussian_kspace_kernel',
    'gaussian_self_energy',
    'neutralising_background',
    'switching_weight',
]


def switching_weight(k_norm: torch.Tensor, k_cut: float, width: float) -> torch.Tensor:
    """Smooth cutoff in |k|: 1 below ``k_cut - width``, cosine down to 0 at ``k_cut`` (continuous with its derivative).

    :param k_norm: (K,) |k| in 1/Å.
    :param k_cut: cutoff in 1/Å.
    :param width: switching width in 1/Å (0 gives a hard cutoff).
    :return: (K,) weights in [0, 1].
    """
    if width <= 0:
        return (k_norm < k_cut).to(k_norm.dtype)
    x = ((k_norm - (k_cut - width)) / width).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * x))


def gaussian_kspace_kernel(k_sq: torch.Tensor, sigma: float, k_cut: float, width: float) -> torch.Tensor:
    """``w(|k|) exp(-sigma^2 k^2 / 2) / k^2`` in Å^2 (the Gaussian Coulomb kernel over 4 pi) for ``k_sq`` > 0.

    :param k_sq: (...) squared wavevectors in 1/Å^2 (> 0).
    :param sigma: Gaussian width in Å (the splitting width for point-charge Ewald sums).
    :param k_cut: cutoff in 1/Å (``math.inf``: none).
    :param width: switching width in 1/Å (0: hard cutoff at ``k_cut``).
    :return: kernel of the shape of ``k_sq``.
    """
    return switching_weight(torch.sqrt(k_sq), k_cut, width) * torch.exp(-0.5 * sigma**2 * k_sq) / k_sq


def erfc_kernel(r: torch.Tensor, sigma: float) -> torch.Tensor:
    """Short-ranged part ``erfc(r / (sqrt(2) sigma)) / r`` (1/Å) of a point-charge Ewald split of width ``sigma``."""
    return torch.erfc(r / (math.sqrt(2.0) * sigma)) / r


def gaussian_self_energy(charges: torch.Tensor, sigma: float, coulomb_constant: float) -> torch.Tensor:
    """Self interaction ``k_e sum_i q_i^2 / (sqrt(2 pi) sigma)`` in eV of Gaussian charges (charges (n,) in e)."""
    return coulomb_constant / (math.sqrt(2.0 * math.pi) * sigma) * (charges * charges).sum()


def neutralising_background(
    charges: torch.Tensor, volume: torch.Tensor, sigma: float, coulomb_constant: float
) -> torch.Tensor:
    """Energy ``-pi k_e Q^2 sigma^2 / V`` in eV of a net charge ``Q`` in a uniform compensating background.

    :param charges: (n,) charges in e.
    :param volume: cell volume in Å^3 (scalar tensor).
    :param sigma: Ewald splitting width in Å.
    :param coulomb_constant: k_e in eV Å / e^2.
    """
    return -math.pi * coulomb_constant * charges.sum() ** 2 * sigma**2 / volume
