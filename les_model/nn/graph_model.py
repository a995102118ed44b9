"""LesGraphModel: the TorchScript-compatible energy path of a :class:`~les_model.nn.model.LesModel`.

:class:`~les_model.nn.model.LesModel` builds its own neighbour list (vesin, Python) and takes forces and stress by
autograd inside ``forward``. Simulation engines that run TorchScript (metatomic: ASE, i-PI, TorchSim, LAMMPS) give
the model a neighbour list with differentiable pair vectors instead and take the derivatives themselves. This module
evaluates the same energy, ``E = sum_i [E0(Z_i) + s e_i] + E_lr(q)``, for one structure from such a list, sharing
the parameters (and buffers: ``e0``, ``energy_scale``, ``charge_sign``) of the wrapped model, with the same operations
in the same order, so its numbers are the native model's up to the summation order of the neighbour pairs.

Not covered (refused by :class:`LesGraphModel`): the QEq charge model.
"""

import torch
from torch import nn

from les_model import _keys as K
from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.nn.charges import LatentChargeHead
from les_model.nn.short_range import scatter_sum

__all__ = ['LesGraphModel', 'predict_with_graph_model']


class LesGraphModel(nn.Module):
    """Energy and latent charges of one structure from a given neighbour list (scriptable with ``torch.jit.script``).

    :param model: a :class:`~les_model.nn.model.LesModel` whose host is scriptable (the built-in ``mpnn`` host);
        its modules and buffers are shared, not copied.
    :raises NotImplementedError: for the QEq charge model.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if model.config.long_range and model.config.charge_model == 'qeq':
            raise NotImplementedError('the QEq charge model has no TorchScript path yet')
        self.host = model.host
        self.cutoff = float(model.cutoff)
        self.register_buffer('species_table', model.species_index.table)
        self.register_buffer('e0', model.e0)
        self.register_buffer('energy_scale', model.energy_scale)
        self.register_buffer('charge_sign', model.charge_sign)
        charge_head: LatentChargeHead | None = model.charge_head
        long_range: LatentEwald | None = model.long_range
        self.charge_head = charge_head
        self.long_range = long_range
        self.state_embedding = model.state_embedding

    def forward(
        self,
        positions: torch.Tensor,
        atomic_numbers: torch.Tensor,
        cell: torch.Tensor,
        pbc: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        total_charge: float = 0.0,
        spin: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy and latent charges of one structure.

        :param positions: (N, 3) positions in Å (differentiable: forces are ``-dE/dpositions``).
        :param atomic_numbers: (N,) int atomic numbers, all among the model species.
        :param cell: (3, 3) lattice vectors as rows in Å (zeros allowed when nothing is periodic).
        :param pbc: (3,) bool periodicity flags (0, 2 or 3 periodic directions).
        :param edge_index: (2, E) int64 full neighbour list ``[i, j]`` within the cutoff (centre first).
        :param edge_vectors: (E, 3) pair vectors ``r_j - r_i + shift`` in Å, differentiable in positions and cell.
        :param total_charge: total charge in e that the latent charges sum to (and input of the state embedding).
        :param spin: number of unpaired electrons 2S (input of the spin embedding, when the model has one).
        :return: ``energy (1,)`` in eV and ``charges (N,)`` in e (zeros without long range).
        """
        n_atoms = positions.shape[0]
        batch = torch.zeros(n_atoms, dtype=torch.int64, device=positions.device)
        species_index = self.species_table[atomic_numbers.to(torch.int64)]
        graph: dict[str, torch.Tensor] = {
            K.POSITIONS: positions,
            K.BATCH: batch,
            K.EDGE_INDEX: edge_index,
            K.EDGE_VECTORS: edge_vectors,
            K.EDGE_LENGTHS: torch.linalg.norm(edge_vectors, dim=-1),
            K.SPECIES_INDEX: species_index,
        }
        total = torch.full([1], total_charge, dtype=positions.dtype, device=positions.device)
        state_embedding = self.state_embedding
        if state_embedding is not None:
            state = state_embedding(total, torch.full([1], spin, dtype=positions.dtype, device=positions.device))
            graph[K.NODE_STATE] = state[batch]
        host_energy, features = self.host(graph)
        node_energy = self.energy_scale * host_energy + self.e0[species_index]
        sr_energy = scatter_sum(node_energy, batch, 1)
        charge_head = self.charge_head
        long_range = self.long_range
        if charge_head is not None and long_range is not None:
            charges = charge_head(features, batch, total, 1, sign=float(self.charge_sign))
            lr_energy = long_range.structure_energy(positions, charges, cell, pbc).reshape(1)
        else:
            charges = torch.zeros_like(node_energy)
            lr_energy = torch.zeros_like(sr_energy)
        return sr_energy + lr_energy, charges


def predict_with_graph_model(
    graph_model: torch.nn.Module, batch: dict[str, torch.Tensor], cutoff: float, compute_stress: bool = False
) -> dict[str, torch.Tensor]:
    """Energy, forces, (stress,) charges and dipole of a one-structure batch through a (scripted) LesGraphModel.

    The Python side builds the neighbour list (vesin) and takes the derivatives, as
    :meth:`les_model.nn.model.LesModel.forward` does, so the outputs match the native model's.

    :param graph_model: :class:`LesGraphModel`, usually ``torch.jit.script``-ed.
    :param batch: collated batch of one structure (:func:`les_model.data.atoms.atoms_to_batch`).
    :param cutoff: neighbour-list cutoff in Å (the model's).
    :param compute_stress: also return ``stress (1,3,3)`` [eV/Å^3] (zero unless 3D-periodic).
    :return: ``energy (1,)`` [eV], ``forces (N,3)`` [eV/Å], ``charges (N,)`` [e], ``dipole (1,3)`` [e Å].
    """
    from les_model.data.neighborlist import edge_vectors, neighbor_list
    from les_model.nn.model import LesModel

    cell, pbc, index = batch[K.CELL], batch[K.PBC], batch[K.BATCH]
    if cell.shape[0] != 1:
        raise ValueError(f'predict_with_graph_model takes one structure, got {cell.shape[0]}')
    nl = neighbor_list(batch[K.POSITIONS].detach(), cell.detach(), pbc, index, cutoff, 1)
    positions = batch[K.POSITIONS].detach().requires_grad_(True)
    inputs = [positions]
    if compute_stress:
        strain = torch.zeros(1, 3, 3, dtype=positions.dtype, device=positions.device, requires_grad=True)
        inputs.append(strain)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        positions = positions + torch.einsum('na,nab->nb', positions, sym[index])
        cell = cell + torch.bmm(cell, sym)
    with torch.enable_grad():
        vectors = edge_vectors(positions, cell, index, nl)
        energy, charges = graph_model(
            positions,
            batch[K.ATOMIC_NUMBERS],
            cell[0],
            pbc[0],
            nl.edge_index,
            vectors,
            float(batch[K.TOTAL_CHARGE][0]),
            float(batch[K.SPIN][0]),
        )
    grads = torch.autograd.grad(energy.sum(), inputs)
    out = {
        K.ENERGY: energy.detach(),
        K.FORCES: -grads[0],
        K.CHARGES: charges.detach(),
        K.DIPOLE: LesModel._dipole(positions.detach(), charges.detach(), cell.detach(), pbc, index, 1),
    }
    if compute_stress:
        periodic = pbc.all(dim=1)
        volume = torch.linalg.det(batch[K.CELL]).abs()
        volume = torch.where(periodic, volume, torch.ones_like(volume))
        stress = grads[1] / volume[:, None, None]
        out[K.STRESS] = torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))
    return out
