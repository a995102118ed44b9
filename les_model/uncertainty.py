"""Committee disagreement measures used to select structures for labelling.

For K committee members with predictions ``F_i^k`` (forces), ``E^k`` (energies) and ``q_i^k`` (latent charges):

- force deviation of atom i: ``sigma_F,i = sqrt(< |F_i^k - <F_i>|^2 >_k)``; per frame the maximum over atoms
  (the DP-GEN criterion), in eV/Å;
- energy deviation per atom: ``std_k(E^k) / n_atoms`` in eV/atom;
- charge deviation of atom i: ``std_k(q_i^k)``; per frame the maximum over atoms, in e.

Charges, dipoles and Born charges are compared after **sign alignment**: the energy of a neutral structure is even
in the latent charges, so a member whose charges are the negative of the others' (as two members trained without
the sign convention of :mod:`les_model.nn.charge_sign` may be) is the same model for energies and forces. Each
member k gets one sign ``s_k = sign(sum_i q_i^k q_i^0)`` over the atoms of the neutral structures of the batch, and
its charges, dipoles and Born charges of those structures are multiplied by ``s_k`` before averaging. Charged
structures are not flipped: there the total charge fixes the sign.

Averages ``<.>_k`` and standard deviations are over members (population form, zero for a single model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from les_model import _keys as K

__all__ = ['FRAME_KEYS', 'align_charge_signs', 'committee_statistics']

#: Per-frame uncertainty entries returned by :func:`committee_statistics` (all of shape (B,)).
FRAME_KEYS = ('max_force_std', 'mean_force_std', 'energy_std_per_atom', 'max_charge_std')


def _scatter_max(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    out = values.new_zeros(n_structures)
    return out.scatter_reduce(0, batch, values, reduce='amax', include_self=True)


def _scatter_mean(values: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    total = values.new_zeros(n_structures).index_add(0, batch, values)
    counts = torch.bincount(batch, minlength=n_structures).to(values.dtype).clamp(min=1)
    return total / counts


def align_charge_signs(
    predictions: Sequence[dict[str, torch.Tensor]], batch: torch.Tensor, total_charge: torch.Tensor | None = None
) -> tuple[list[dict[str, torch.Tensor]], list[int]]:
    """Flip the charge-derived outputs of members whose charges are the negative of member 0's (module docstring).

    :param predictions: one output dict per member; ``charges (N,)``, ``dipole (B,3)``, ``bec (N,3,3)`` are used.
    :param batch: (N,) structure index of each atom.
    :param total_charge: (B,) total charges in e (None: all neutral); only neutral structures are flipped.
    :return: the (shallow-copied) aligned predictions and the sign applied to each member (+1 or -1).
    """
    if not predictions or not all(K.CHARGES in p for p in predictions):
        return list(predictions), [1] * len(predictions)
    if total_charge is None:
        n_structures = int(batch.max()) + 1 if batch.numel() else 0
        neutral = torch.ones(n_structures, dtype=torch.bool, device=batch.device)
    else:
        neutral = total_charge.abs() < 1e-8
    atom_neutral = neutral[batch]
    reference = predictions[0][K.CHARGES].detach()
    aligned, signs = [], []
    for member in predictions:
        overlap = float((member[K.CHARGES].detach() * reference * atom_neutral).sum())
        sign = -1 if overlap < 0.0 else 1
        signs.append(sign)
        out = dict(member)
        if sign < 0:
            out[K.CHARGES] = torch.where(atom_neutral, -member[K.CHARGES], member[K.CHARGES])
            if K.DIPOLE in member:
                out[K.DIPOLE] = torch.where(neutral[:, None], -member[K.DIPOLE], member[K.DIPOLE])
            if K.BEC in member:
                out[K.BEC] = torch.where(atom_neutral[:, None, None], -member[K.BEC], member[K.BEC])
        aligned.append(out)
    return aligned, signs


def committee_statistics(
    predictions: Sequence[dict[str, torch.Tensor]],
    batch: torch.Tensor,
    n_atoms: torch.Tensor,
    total_charge: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Committee means and disagreement of energies, forces, stress, charges and dipoles (sign-aligned).

    :param predictions: one output dict per member (``energy (B,)``, optional ``forces (N,3)``, ``stress (B,3,3)``,
        ``charges (N,)``, ``dipole (B,3)``, ``bec (N,3,3)``).
    :param batch: (N,) structure index of each atom.
    :param n_atoms: (B,) number of atoms per structure.
    :param total_charge: (B,) total charges in e (None: all neutral), for :func:`align_charge_signs`.
    :return: mean predictions under their usual keys, plus ``force_std (N,)``, ``charge_std (N,)`` and the
        per-frame entries of :data:`FRAME_KEYS`, all detached.
    """
    if len(predictions) == 0:
        raise ValueError('committee_statistics needs at least one prediction, got 0')
    predictions, _ = align_charge_signs(predictions, batch, total_charge)
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
