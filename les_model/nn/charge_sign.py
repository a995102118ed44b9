r"""Global sign convention of latent charges: negative charge on the more electronegative atoms.

The long-range energy of a neutral structure is even in the latent charges, ``E_lr(q) = E_lr(-q)``, so a model
trained on energies and forces alone learns ``q`` or ``-q`` at random (two committee members may disagree). Every
charge-derived output (charges, dipole, polarization, Born effective charges, IR) inherits that arbitrary sign.

Convention: the model's charges are oriented so that the **electronegativity-weighted charge**

.. math::

    S = \sum_{\text{neutral } s} \sum_{i \in s} \chi(Z_i)\, q_i

over the training structures is negative, with :math:`\chi` the Pauling electronegativity. For water this puts
the negative charge on O, for NaCl on Cl. The sign is a model buffer (``charge_sign``, +1 or -1, saved in the model
file) that multiplies the charge head's raw output, so flipping it maps ``q -> -q`` exactly for neutral structures
and changes no energy or force. It is applied by the trainer after every epoch (so every checkpoint and the saved
model follow it) when the flip is a symmetry of the loss: all training structures neutral and no dipole or
Born-charge labels trained on (those labels fix the physical sign themselves). Structures whose species all have
the same electronegativity give ``S = 0``: the convention cannot decide and the sign is left as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from les_model import _keys as K

__all__ = ['PAULING_ELECTRONEGATIVITY', 'dataset_orientation_score', 'electronegativity', 'orientation_score']

#: Pauling electronegativity by atomic number (dimensionless). He, Ne and Ar have none; elements past Z = 103 are
#: not listed. Checked against pymatgen's ``Element.X`` in the tests.
PAULING_ELECTRONEGATIVITY: Mapping[int, float] = {
    1: 2.20, 3: 0.98, 4: 1.57, 5: 2.04, 6: 2.55, 7: 3.04, 8: 3.44, 9: 3.98,
    11: 0.93, 12: 1.31, 13: 1.61, 14: 1.90, 15: 2.19, 16: 2.58, 17: 3.16,
    19: 0.82, 20: 1.00, 21: 1.36, 22: 1.54, 23: 1.63, 24: 1.66, 25: 1.55, 26: 1.83, 27: 1.88, 28: 1.91,
    29: 1.90, 30: 1.65, 31: 1.81, 32: 2.01, 33: 2.18, 34: 2.55, 35: 2.96, 36: 3.00,
    37: 0.82, 38: 0.95, 39: 1.22, 40: 1.33, 41: 1.60, 42: 2.16, 43: 1.90, 44: 2.20, 45: 2.28, 46: 2.20,
    47: 1.93, 48: 1.69, 49: 1.78, 50: 1.96, 51: 2.05, 52: 2.10, 53: 2.66, 54: 2.60,
    55: 0.79, 56: 0.89, 57: 1.10, 58: 1.12, 59: 1.13, 60: 1.14, 61: 1.13, 62: 1.17, 63: 1.20, 64: 1.20, 65: 1.10,
    66: 1.22, 67: 1.23,
    68: 1.24, 69: 1.25, 70: 1.10, 71: 1.27, 72: 1.30, 73: 1.50, 74: 2.36, 75: 1.90, 76: 2.20, 77: 2.20, 78: 2.28,
    79: 2.54, 80: 2.00, 81: 1.62, 82: 2.33, 83: 2.02, 84: 2.00, 85: 2.20, 86: 2.20,
    87: 0.70, 88: 0.90, 89: 1.10, 90: 1.30, 91: 1.50, 92: 1.38, 93: 1.36, 94: 1.28, 95: 1.30, 96: 1.30,
    97: 1.30, 98: 1.30, 99: 1.30, 100: 1.30, 101: 1.30, 102: 1.30, 103: 1.30,
}  # fmt: skip


def electronegativity(atomic_numbers: torch.Tensor) -> torch.Tensor:
    """Pauling electronegativity of each atom, NaN where the table has none.

    :param atomic_numbers: (N,) int64.
    :return: (N,) float64.
    """
    table = [
        PAULING_ELECTRONEGATIVITY.get(z, math.nan)
        for z in range(int(atomic_numbers.max()) + 1 if atomic_numbers.numel() else 1)
    ]
    return torch.tensor(table, dtype=torch.float64, device=atomic_numbers.device)[atomic_numbers]


def orientation_score(
    charges: torch.Tensor, atomic_numbers: torch.Tensor, batch: torch.Tensor, total_charge: torch.Tensor
) -> float:
    """``S = sum_s sum_i chi(Z_i) q_i`` over the neutral structures of a batch (see the module docstring).

    Atoms without a tabulated electronegativity get their structure's mean, which contributes nothing to a
    neutral structure's sum.

    :param charges: (N,) latent charges in e.
    :param atomic_numbers: (N,) int64.
    :param batch: (N,) int64 structure index.
    :param total_charge: (B,) total charges in e; charged structures are left out.
    :return: S in e (negative: the convention holds).
    """
    n_structures = int(total_charge.shape[0])
    chi = electronegativity(atomic_numbers)
    known = torch.isfinite(chi)
    counts = torch.zeros(n_structures, dtype=torch.float64, device=chi.device).index_add(0, batch, known.double())
    sums = torch.zeros(n_structures, dtype=torch.float64, device=chi.device).index_add(
        0, batch, torch.where(known, chi, torch.zeros_like(chi))
    )
    mean = sums / counts.clamp(min=1)
    chi = torch.where(known, chi, mean[batch])
    neutral = (total_charge.abs() < 1e-8)[batch]
    return float((chi * charges.detach().double() * neutral).sum())


@torch.no_grad()
def dataset_orientation_score(model, batches) -> float:
    """Sum of :func:`orientation_score` over ``batches`` (collated dicts on the model's device and dtype)."""
    score = 0.0
    for batch in batches:
        out = model(batch, compute_forces=False)
        score += orientation_score(out[K.CHARGES], batch[K.ATOMIC_NUMBERS], batch[K.BATCH], batch[K.TOTAL_CHARGE])
    return score
