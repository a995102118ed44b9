"""Committee disagreement measures used to select structures for labelling.

For K committee members with predictions ``F_i^k`` (forces), ``E^k`` (energies) and ``q_i^k`` (latent charges):

- force deviation of atom i: ``sigma_F,i = sqrt(< |F_i^k - <F_i>|^2 >_k)``; per frame the maximum over atoms
  (the DP-GEN criterion), in eV/Å;
- energy deviation per atom: ``std_k(E^k) / n_atoms`` in eV/atom;
- charge deviation of atom i: ``std_k(q_i^k)``; per frame the maximum over atoms, in e.

Averages ``<.>_k`` and standard deviations are over members (population form, zero for a single model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from les_model import _keys as K

__all__ = ['FRAME_KEYS', 'committee_statistics']

#: Per-frame uncertainty entries returned by :func:`committee_statistics` (all of shape (B,)).
FRAME_KEYS = ('max_force_std', 'mean_force_std', 'energy_std_per_atom', 'max_charge_std')


def _scatter_max(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    out = values.new_zeros(n_structures)
    return out.scatter_reduce(0, batch, values, reduce='amax', include_self=True)


def _scatter_mean(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    total = values.new_zeros(n_structures).index_add(0, batch, values)
    counts = torch.bincount(batch, minlength=n_structures).to(values.dtype).clamp(min=1)
    return total / counts


def committee_statistics(
    predictions: Sequence[dict[str, torch.Tensor]], batch: torch.Tensor, n_atoms: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Committee means and disagreement of energies, forces, stress, charges and dipoles.

    :param predictions: one output dict per member (``energy (B,)``, optional ``forces (N,3)``, ``stress (B,3,3)``,
        ``charges (N,)``, ``dipole (B,3)``, ``bec (N,3,3)``).
    :param batch: (N,) structure index of each atom.
    :param n_atoms: (B,) number of atoms per structure.
    :return: mean predictions under their usual keys, plus ``force_std (N,)``, ``charge_std (N,)`` and the
        per-frame entries of :data:`FRAME_KEYS`, all detached.
    """
    if len(predictions) == 0:
        raise ValueError('committee_statistics needs at least one prediction, got 0')
    n_structures = int(n_atoms.shape[0])
    out: dict[str, torch.Tensor] = {}
    for key in (K.ENERGY, K.FORCES, K.STRESS, K.CHARGES, K.DIPOLE, K.BEC):
        if all(key in p for p in predictions):
            out[key] = torch.stack([p[key].detach() for p in predictions]).mean(dim=0)
    energies = torch.stack([p[K.ENERGY].detach() for p in predictions])
    out['energy_std_per_atom'] = energies.std(dim=0, unbiased=False) / n_atoms.to(energies.dtype)
    if K.FORCES in out:
        forces = torch.stack([p[K.FORCES].detach() for p in predictions])
        force_std = (forces - out[K.FORCES]).square().sum(dim=-1).mean(dim=0).sqrt()
        out['force_std'] = force_std
        out['max_force_std'] = _scatter_max(force_std, batch, n_structures)
        out['mean_force_std'] = _scatter_mean(force_std, batch, n_structures)
    else:
        zeros = energies.new_zeros(n_structures)
        out['max_force_std'] = out['mean_force_std'] = zeros
    if K.CHARGES in out:
        charges = torch.stack([p[K.CHARGES].detach() for p in predictions])
        charge_std = charges.std(dim=0, unbiased=False)
        out['charge_std'] = charge_std
        out['max_charge_std'] = _scatter_max(charge_std, batch, n_structures)
    else:
        out['max_charge_std'] = energies.new_zeros(n_structures)
    return out
