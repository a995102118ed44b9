"""LesModel: short-range host + charge head + latent Ewald sum; energy, forces, stress by autograd.

``E = sum_i [E0(Z_i) + s * e_i] + E_lr(q)``, with ``e_i`` the host's per-atom energies, ``s`` a fixed energy scale
set from the training data, ``q_i`` latent charges from the host features (constrained to the total charge) and
``E_lr`` the LES energy (:class:`~les_model.electrostatics.latent_ewald.LatentEwald`). Forces ``F = -dE/dr`` and the
stress ``sigma = (1/V) dE/d(strain)`` (ase sign convention, eV/Å^3) are derivatives of the *total* energy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from les_model import _keys as K
from les_model.config import ModelConfig
from les_model.data.neighborlist import edge_vectors, neighbor_list
from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.nn.charges import ElectronegativityHead, LatentChargeHead
from les_model.nn.embeddings import GlobalStateEmbedding, SpeciesIndex
from les_model.nn.qeq import QEq
from les_model.nn.response import born_effective_charges, dipole_moment, polarization
from les_model.nn.short_range import MessagePassingHost, ShortRangeHost, scatter_sum

__all__ = ['LesModel', 'build_host']


def build_host(config: ModelConfig, n_species: int, species: Sequence[int]) -> ShortRangeHost:
    """Build the short-range host named by ``config.backbone``.

    :param config: model configuration.
    :param n_species: S, number of species.
    :param species: the S atomic numbers (needed by hosts that embed elements themselves).
    """
    if config.backbone == 'mpnn':
        return MessagePassingHost(
            n_species=n_species,
            cutoff=config.cutoff,
            n_features=config.n_features,
            n_radial=config.n_radial,
            n_interactions=config.n_interactions,
            radial_basis=config.radial_basis,
            cutoff_function=config.cutoff_function,
            angular=config.angular,
            readout_hidden=config.readout_hidden,
        )
    if config.backbone == 'mace':
        from les_model.nn.mace_host import MaceHost

        return MaceHost(species=species, cutoff=config.cutoff, n_features=config.n_features, **config.mace)
    raise ValueError(f"backbone must be 'mpnn' or 'mace', got {config.backbone!r}")


class LesModel(nn.Module):
    """A Latent Ewald Summation potential (or its short-range baseline when ``config.long_range`` is false).

    :param config: architecture.
    :param species: atomic numbers the model handles, in embedding order.
    :param reference_energies: per-species E0 [eV] (missing species get 0).
    :param host: a ready host network; built from ``config`` when None.
    """

    def __init__(
        self,
        config: ModelConfig,
        species: Sequence[int],
        reference_energies: Mapping[int, float] | None = None,
        host: ShortRangeHost | None = None,
    ):
        super().__init__()
        species = [int(z) for z in species]
        self.config = config
        self.species = tuple(species)
        self.species_index = SpeciesIndex(species)
        self.host = host if host is not None else build_host(config, len(species), species)
        reference_energies = reference_energies or {}
        e0 = torch.tensor([float(reference_energies.get(z, 0.0)) for z in species])
        self.register_buffer('e0', e0)
        #: energy scale s [eV] multiplying the host energies; set from the training data.
        self.register_buffer('energy_scale', torch.tensor(1.0))
        #: global sign convention of the latent charges (+1 or -1; :mod:`les_model.nn.charge_sign`).
        self.register_buffer('charge_sign', torch.tensor(1.0))
        use_state = config.charge_embedding or config.spin_embedding
        self.state_embedding = (
            GlobalStateEmbedding(self.host.n_features, config.charge_embedding, config.spin_embedding)
            if use_state
            else None
        )
        self.charge_head: nn.Module | None = None
        self.long_range: LatentEwald | None = None
        if config.long_range:
            if config.charge_model == 'qeq':
                self.charge_head = ElectronegativityHead(self.host.n_features, config.charge_hidden)
            else:
                self.charge_head = LatentChargeHead(
                    self.host.n_features, config.charge_hidden, distribution=config.charge_distribution
                )
            self.long_range = LatentEwald(sigma=config.sigma, dl=config.dl)
            self.qeq = QEq(kernel=self.long_range) if config.charge_model == 'qeq' else None

    @property
    def cutoff(self) -> float:
        """Short-range cutoff in Å."""
        return float(self.host.cutoff)

    def reference_energies(self) -> dict[int, float]:
        """Per-species E0 in eV."""
        return {z: float(e) for z, e in zip(self.species, self.e0.tolist(), strict=True)}

    def _charges(self, data, features, n_structures):
        batch = data[K.BATCH]
        total_charge = data[K.TOTAL_CHARGE]
        if isinstance(self.charge_head, ElectronegativityHead):
            chi, hardness = self.charge_head(features)
            return self.qeq(
                self.charge_sign * chi,
                hardness,
                data[K.POSITIONS],
                data[K.CELL],
                data[K.PBC],
                batch,
                n_structures,
                total_charge,
            )
        return self.charge_head(features, batch, total_charge, n_structures, sign=float(self.charge_sign))

    @torch.no_grad()
    def orient_charges(self, batches) -> dict[str, float | bool]:
        """Apply the charge sign convention of :mod:`~les_model.nn.charge_sign` on ``batches``.

        Flips :attr:`charge_sign` when the electronegativity-weighted charge of the neutral structures is positive.
        Only call it when the flip is a symmetry of what was trained on (neutral structures, no dipole/BEC labels).

        :param batches: iterable of collated batches on the model's device and dtype.
        :return: ``{'score': S before, 'flipped': bool, 'sign': the sign now}``; S in e.
        """
        from les_model.nn.charge_sign import dataset_orientation_score

        if self.long_range is None:
            return {'score': 0.0, 'flipped': False, 'sign': float(self.charge_sign)}
        score = dataset_orientation_score(self, batches)
        flipped = score > 0.0
        if flipped:
            self.charge_sign.neg_()
        return {'score': score, 'flipped': flipped, 'sign': float(self.charge_sign)}

    @staticmethod
    def _dipole(positions, charges, cell, pbc, batch, n_structures):
        dipole = dipole_moment(positions, charges, batch, n_structures)
        periodic = pbc.all(dim=1)
        if bool(periodic.any()):
            eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand_as(cell)
            safe_cell = torch.where(periodic[:, None, None], cell, eye)
            wrapped = polarization(positions, charges, safe_cell, batch, n_structures)
            dipole = torch.where(periodic[:, None], wrapped, dipole)
        return dipole

    def forward(
        self,
        data: Mapping[str, torch.Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool = False,
        compute_bec: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Predict energies (and forces / stress) of a batch.

        :param data: batch from :func:`les_model.data.atoms.collate` (``positions (N,3)``, ``atomic_numbers (N,)``,
            ``batch (N,)``, ``cell (B,3,3)``, ``pbc (B,3)``, ``total_charge (B,)``, ``spin (B,)``), on the model's
            device and dtype.
        :param compute_forces: return ``forces (N,3)`` [eV/Å].
        :param compute_stress: return ``stress (B,3,3)`` [eV/Å^3] (zero for structures not periodic in 3D).
        :param create_graph: keep the graph of the derivatives (needed to train on forces / stress).
        :param compute_bec: return Born effective charges ``bec (N,3,3)`` [e],
            ``Z*_{i,ab} = d mu_a / d r_{i,b}`` of the dipole (charges vary with positions).
        :return: ``energy (B,)``, ``sr_energy (B,)``, ``lr_energy (B,)``, ``node_energy (N,)``, ``charges (N,)``
            (zeros without long range), ``dipole (B,3)`` [e Å] (``sum_i q_i r_i`` for molecules, the wrapped
            polarization dipole of :func:`~les_model.nn.response.polarization` for 3D-periodic cells),
            ``node_features (N,F)`` and optionally ``forces``, ``stress``, ``bec``.
        """
        positions = data[K.POSITIONS]
        cell = data[K.CELL]
        pbc = data[K.PBC]
        batch = data[K.BATCH]
        n_structures = cell.shape[0]
        dtype = positions.dtype
        if dtype != self.e0.dtype:
            raise TypeError(f'data dtype {dtype} does not match the model dtype {self.e0.dtype}; cast one of them')
        nl = neighbor_list(positions.detach(), cell.detach(), pbc, batch, self.cutoff, n_structures)

        grad_inputs = []
        if compute_forces or compute_stress or compute_bec:
            positions = positions.detach().requires_grad_(True)
            grad_inputs.append(positions)
        if compute_stress:
            strain = torch.zeros(n_structures, 3, 3, dtype=dtype, device=positions.device, requires_grad=True)
            grad_inputs.append(strain)
            sym = 0.5 * (strain + strain.transpose(1, 2))
            positions = positions + torch.einsum('na,nab->nb', positions, sym[batch])
            cell = cell + torch.bmm(cell, sym)

        with torch.set_grad_enabled(torch.is_grad_enabled() or bool(grad_inputs)):
            vectors = edge_vectors(positions, cell, batch, nl)
            graph = dict(data)
            graph[K.POSITIONS] = positions
            graph[K.CELL] = cell
            graph[K.EDGE_INDEX] = nl.edge_index
            graph[K.EDGE_VECTORS] = vectors
            graph[K.EDGE_LENGTHS] = torch.linalg.norm(vectors, dim=-1)
            species_index = self.species_index(data[K.ATOMIC_NUMBERS])
            graph[K.SPECIES_INDEX] = species_index
            if self.state_embedding is not None:
                state = self.state_embedding(data[K.TOTAL_CHARGE], data[K.SPIN])
                graph[K.NODE_STATE] = state[batch]
            host_energy, features = self.host(graph)
            node_energy = self.energy_scale * host_energy + self.e0[species_index]
            sr_energy = scatter_sum(node_energy, batch, n_structures)
            if self.long_range is not None:
                charges = self._charges(graph, features, n_structures)
                lr_energy = self.long_range(positions, charges, cell, pbc, batch, n_structures)
            else:
                charges = torch.zeros_like(node_energy)
                lr_energy = torch.zeros_like(sr_energy)
            energy = sr_energy + lr_energy

        out = {
            K.ENERGY: energy,
            K.SR_ENERGY: sr_energy,
            K.LR_ENERGY: lr_energy,
            K.NODE_ENERGY: node_energy,
            K.NODE_FEATURES: features,
            K.CHARGES: charges,
            K.DIPOLE: self._dipole(positions, charges, cell, pbc, batch, n_structures),
        }
        if compute_bec:
            out[K.BEC] = born_effective_charges(out[K.DIPOLE], grad_inputs[0], create_graph=create_graph)
        if compute_forces or compute_stress:
            grads = torch.autograd.grad(energy.sum(), grad_inputs, create_graph=create_graph)
            if compute_forces:
                out[K.FORCES] = -grads[0]
            if compute_stress:
                periodic = pbc.all(dim=1)
                volume = torch.linalg.det(data[K.CELL]).abs()
                volume = torch.where(periodic, volume, torch.ones_like(volume))
                stress = grads[1] / volume[:, None, None]
                out[K.STRESS] = torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))
        return out
