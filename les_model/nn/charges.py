"""Charge heads: map host node features to latent charges (or to QEq electronegativities and hardnesses)."""

from __future__ import annotations

import torch
from torch import nn

from les_model.nn.charge_constraints import enforce_total_charge

__all__ = ['LatentChargeHead', 'ElectronegativityHead']


class LatentChargeHead(nn.Module):
    """Latent charges ``q_i = MLP(h_i)``, shifted per structure so that they sum to the total charge.

    :param n_features: F, width of the node features.
    :param hidden: hidden width of the MLP.
    """

    def __init__(self, n_features: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(
        self, features: torch.Tensor, batch: torch.Tensor, total_charge: torch.Tensor, n_structures: int
    ) -> torch.Tensor:
        """:param features: (N, F). :param batch: (N,) int64. :param total_charge: (B,) in e.
        :param n_structures: B. :return: (N,) charges in e summing to ``total_charge`` per structure."""
        raw = self.net(features).squeeze(-1)
        return enforce_total_charge(raw, batch, total_charge, n_structures)


class ElectronegativityHead(nn.Module):
    """Per-atom electronegativity chi_i [eV/e] and hardness J_i > 0 [eV/e^2] for charge equilibration.

    ``J_i = softplus(MLP(h_i)) + j_min`` (initialised near 9 eV/e^2) keeps the QEq problem positive definite.

    :param n_features: F, width of the node features.
    :param hidden: hidden width of the MLP.
    :param j_min: lower bound of the hardness in eV/e^2.
    """

    def __init__(self, n_features: int, hidden: int = 32, j_min: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(), nn.Linear(hidden, 2))
        self.j_min = float(j_min)
        with torch.no_grad():  # start near a typical hardness of ~9 eV/e^2
            self.net[2].bias[1] = 8.0

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:param features: (N, F). :return: chi (N,) in eV/e and J (N,) in eV/e^2."""
        out = self.net(features)
        return out[:, 0], nn.functional.softplus(out[:, 1]) + self.j_min
