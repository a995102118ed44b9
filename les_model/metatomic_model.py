# metatomic checks forward() against typing.List/Dict/Optional annotations exactly:
# ruff: noqa: UP006, UP035, UP045
"""Export LES models (one or a committee) as a metatomic model, runnable by ASE, i-PI, TorchSim and LAMMPS.

The exported file is a TorchScript :class:`metatomic.torch.AtomisticModel` around :class:`LesMetatomicModule`:

- ``energy`` (eV, per structure): the committee mean of the members' energies. Forces and stress are not outputs:
  the engine takes them by autograd through the positions and cell (metatomic's convention), which works because
  the pair vectors of the neighbour list the engine passes in are differentiable.
- ``energy_ensemble`` (eV, per structure, one property per member) and ``energy_uncertainty`` (eV, per structure,
  population standard deviation of the members' energies); only for a committee of two or more.
- ``les::charges`` (e, per atom): latent charges, the committee mean after aligning the members' signs (as
  :func:`les_model.uncertainty.align_charge_signs` does for neutral structures).

Lengths are in Å. The model asks for one full, strict neighbour list with the model cutoff; the long-range part
needs the whole structure, so the interaction range is infinite and ``selected_atoms`` (domain decomposition) is
refused. Structures are neutral (the latent charges sum to zero) unless the model is exported with
``total_charge_input=True``: it then requests metatomic's standard per-structure ``charge`` input (e; in ASE
``atoms.info['charge']``), which not every engine provides. Models with a spin embedding are refused. Requires
``metatomic-torch`` (the ``export`` extra); nothing else in :mod:`les_model` imports it.
"""

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

from les_model.nn.graph_model import LesGraphModel

__all__ = ['CHARGES_OUTPUT', 'LesMetatomicModule', 'export_metatomic', 'metatomic_model']

#: Name of the latent-charge output (a non-standard output: ``<domain>::<name>``).
CHARGES_OUTPUT = 'les::charges'


class LesMetatomicModule(torch.nn.Module):
    """metatomic ``ModelInterface`` over the :class:`~les_model.nn.graph_model.LesGraphModel` of each member.

    :param models: the committee members (:class:`~les_model.nn.model.LesModel`, same cutoff and species).
    :param total_charge_input: read each structure's total charge from metatomic's ``charge`` input.
    """

    def __init__(self, models: Sequence[torch.nn.Module], total_charge_input: bool = False):
        super().__init__()
        if len(models) == 0:
            raise ValueError('export needs at least one model, got none')
        if any(m.config.spin_embedding for m in models):
            raise NotImplementedError('models with a spin embedding cannot be exported yet (no spin input mapping)')
        self.total_charge_input = bool(total_charge_input)
        cutoffs = {float(m.cutoff) for m in models}
        if len(cutoffs) != 1:
            raise ValueError(f'committee members must share one cutoff, got {sorted(cutoffs)} Å')
        self.members = torch.nn.ModuleList([LesGraphModel(m) for m in models])
        self.n_members = len(models)
        self.cutoff = cutoffs.pop()
        self.charges_output = CHARGES_OUTPUT
        self.neighbors = NeighborListOptions(cutoff=self.cutoff, full_list=True, strict=True)

    def requested_neighbor_lists(self) -> list[NeighborListOptions]:
        """The one full neighbour list within the model cutoff."""
        return [self.neighbors]

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        """Metatomic's per-structure ``charge`` (e) when exported with ``total_charge_input``, else nothing."""
        if self.total_charge_input:
            return {'charge': ModelOutput(unit='e', sample_kind='system')}
        return {}

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        """Energies (B, 1), member energies (B, M), their spread (B, 1) and latent charges (N, 1) of ``systems``."""
        if selected_atoms is not None:
            raise ValueError('LES models need whole structures: selected_atoms (domain decomposition) is unsupported')
        for name, output in outputs.items():
            if name != self.charges_output and output.sample_kind != 'system':
                raise ValueError(f'{name}: only per-structure (sample_kind="system") values are available')
        energies: list[torch.Tensor] = []
        charges: list[torch.Tensor] = []
        atom_samples: list[torch.Tensor] = []
        for s, system in enumerate(systems):
            neighbors = system.get_neighbor_list(self.neighbors)
            pairs = neighbors.samples.values
            edge_index = pairs[:, :2].T.to(torch.int64)
            edge_vectors = neighbors.values.reshape(-1, 3)
            total_charge = 0.0
            if self.total_charge_input:
                total_charge = float(system.get_data('charge').block().values.reshape(-1)[0])
            member_energies: list[torch.Tensor] = []
            member_charges: list[torch.Tensor] = []
            for member in self.members:
                energy, q = member(
                    system.positions, system.types, system.cell, system.pbc, edge_index, edge_vectors, total_charge
                )
                member_energies.append(energy)
                member_charges.append(q)
            # sign-align the members' charges to member 0 (neutral structures only: there E(q) = E(-q))
            reference = member_charges[0]
            aligned = member_charges
            if abs(total_charge) < 1e-8:
                aligned = [torch.where((q * reference).sum() < 0.0, -q, q) for q in member_charges]
            energies.append(torch.cat(member_energies))
            charges.append(torch.stack(aligned).mean(dim=0))
            n_atoms = system.positions.shape[0]
            index = torch.arange(n_atoms, dtype=torch.int32, device=system.positions.device)
            atom_samples.append(torch.stack([torch.full_like(index, s), index], dim=1))

        device = systems[0].positions.device
        member_energies_all = torch.stack(energies)  # (B, M)
        system_samples = Labels(['system'], torch.arange(len(systems), dtype=torch.int32, device=device)[:, None])
        results: dict[str, TensorMap] = {}
        if 'energy' in outputs:
            results['energy'] = _single_block(member_energies_all.mean(dim=1, keepdim=True), system_samples, 'energy')
        if 'energy_ensemble' in outputs:
            results['energy_ensemble'] = _single_block(member_energies_all, system_samples, 'energy')
        if 'energy_uncertainty' in outputs:
            spread = member_energies_all.std(dim=1, unbiased=False, keepdim=True)
            results['energy_uncertainty'] = _single_block(spread, system_samples, 'energy')
        if self.charges_output in outputs:
            samples = Labels(['system', 'atom'], torch.cat(atom_samples))
            results[self.charges_output] = _single_block(torch.cat(charges)[:, None], samples, 'charge')
        return results


def _single_block(values: torch.Tensor, samples: Labels, property_name: str) -> TensorMap:
    """A one-block TensorMap of ``values`` (n_samples, n_properties)."""
    properties = Labels([property_name], torch.arange(values.shape[1], device=values.device)[:, None])
    block = TensorBlock(values=values, samples=samples, components=[], properties=properties)
    keys = Labels(['_'], torch.zeros(1, 1, dtype=torch.int32, device=values.device))
    return TensorMap(keys=keys, blocks=[block])


def metatomic_model(
    models: Sequence[torch.nn.Module],
    dtype: torch.dtype = torch.float64,
    name: str = 'LES potential',
    total_charge_input: bool = False,
) -> AtomisticModel:
    """Wrap ``models`` (a committee, or one model) in a metatomic :class:`AtomisticModel` (see the module docstring).

    :param models: :class:`~les_model.nn.model.LesModel` instances (copied to CPU, ``dtype``, eval mode).
    :param dtype: ``torch.float64`` or ``torch.float32``.
    :param name: model name in the metadata.
    :param total_charge_input: request the per-structure ``charge`` input (otherwise structures are neutral).
    """
    # Copies without parameter gradients: the engine only differentiates with respect to positions and cell, and
    # autograd then keeps no per-edge inputs for weight gradients (a third less memory at 3,000 atoms).
    models = [copy.deepcopy(m).to(device='cpu', dtype=dtype).eval().requires_grad_(False) for m in models]
    species = sorted({int(z) for m in models for z in m.species})
    for m in models:
        if sorted(m.species) != species:
            raise ValueError(f'committee members must share their species, got {list(m.species)} and {species}')
    module = LesMetatomicModule(models, total_charge_input=total_charge_input).eval()
    outputs = {
        'energy': ModelOutput(unit='eV', sample_kind='system', description='LES energy (committee mean)'),
        CHARGES_OUTPUT: ModelOutput(unit='e', sample_kind='atom', description='LES latent charges (committee mean)'),
    }
    if len(models) > 1:
        outputs['energy_ensemble'] = ModelOutput(
            unit='eV', sample_kind='system', description='energies of the committee members'
        )
        outputs['energy_uncertainty'] = ModelOutput(
            unit='eV', sample_kind='system', description='standard deviation of the committee energies'
        )
    capabilities = ModelCapabilities(
        outputs=outputs,
        atomic_types=species,
        interaction_range=float('inf'),
        length_unit='angstrom',
        supported_devices=['cpu', 'cuda'],
        dtype='float64' if dtype == torch.float64 else 'float32',
    )
    metadata = ModelMetadata(
        name=name,
        description=(
            f'Latent Ewald Summation potential, committee of {len(models)} (aiida-les); energy in eV, lengths in Å'
        ),
    )
    return AtomisticModel(module, metadata, capabilities)


def export_metatomic(
    models: Sequence[torch.nn.Module],
    path: str | Path,
    dtype: torch.dtype = torch.float64,
    total_charge_input: bool = False,
) -> Path:
    """Write ``models`` as one metatomic model file (TorchScript) to ``path``; see :func:`metatomic_model`."""
    path = Path(path)
    metatomic_model(models, dtype=dtype, total_charge_input=total_charge_input).save(str(path))
    return path
