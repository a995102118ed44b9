"""Charge heads: map host node features to latent charges (or to QEq electronegativities and hardnesses)."""

import torch
from torch import nn

from les_model.nn.charge_constraints import shift_to_total_charge, structure_softmax_unchecked

__all__ = ['LatentChargeHead', 'ElectronegativityHead']


class LatentChargeHead(nn.Module):
    """Latent charges ``q_i = s r_i + w_i (Q - s sum_j r_j)`` with ``r_i = MLP(h_i)``, summing to the total charge Q.

    ``s = +-1`` is the model's global sign convention (:mod:`les_model.nn.charge_sign`): energies and forces of a
    neutral structure are even in ``q``, so the sign is fixed by convention, not by the data. The net charge Q is
    distributed by ``w_i``: uniformly (``distribution='uniform'``, ``w_i = 1/n``) or by a softmax over the atoms of
    the structure of ``a_i = MLP'(h_i)`` (``'learned'``; its last layer starts at zero, so the distribution starts
    uniform). With weights, the net charge can sit on one fragment whatever the number of atoms elsewhere: the
    uniform shift ``Q/n`` of a charged ion changes when neutral molecules are added, the learned one need not.

    :param n_features: F, width of the node features.
    :param hidden: hidden width of the MLPs.
    :param distribution: ``'uniform'`` or ``'learned'``.
    """

    def __init__(self, n_features: int, hidden: int = 32, distribution: str = 'learned'):
        super().__init__()
        if distribution not in ('uniform', 'learned'):
            raise ValueError(f"distribution must be 'uniform' or 'learned', got {distribution!r}")
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        weight_net = None
        if distribution == 'learned':
            weight_net = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(), nn.Linear(hidden, 1))
            with torch.no_grad():
                weight_net[2].weight.zero_()
                weight_net[2].bias.zero_()
        self.weight_net = weight_net

    def charge_weights(self, features: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor | None:
        """(N,) weights ``w_i`` of the net charge (each structure's sum to 1); None for the uniform distribution."""
        weight_net = self.weight_net
        if weight_net is None:
            return None
        return structure_softmax_unchecked(weight_net(features).squeeze(-1), batch, n_structures)

    def forward(
        self,
        features: torch.Tensor,
        batch: torch.Tensor,
        total_charge: torch.Tensor,
        n_structures: int,
        sign: float = 1.0,
    ) -> torch.Tensor:
        """:param features: (N, F). :param batch: (N,) int64. :param total_charge: (B,) in e.
        :param n_structures: B. :param sign: global sign convention, +1 or -1.
        :return: (N,) charges in e summing to ``total_charge`` per structure.
        """
        raw = sign * self.net(features).squeeze(-1)
        weights = self.charge_weights(features, batch, n_structures)
        total_charge = total_charge.to(dtype=raw.dtype, device=raw.device)
        return shift_to_total_charge(raw, batch, total_charge, n_structures, weights)


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
