r"""Synthetic labelled data for tests, examples and benchmarks: point charges with a short-range repulsion.

Reference potential (units eV, Å, e):

.. math::

    E = \sum_{i<j,\, r_{ij} < r_c} A \, e^{-r_{ij}/\rho} + E_\mathrm{Coulomb}(\{q_i\})

with fixed charges per species and the *converged* point-charge Coulomb energy of the electrostatics engine
(:class:`~les_model.electrostatics.coulomb.CoulombEnergy`: Ewald for periodic cells, bare pair sum for molecules).
Forces and stress are its autograd derivatives. It is a truth independent of the learnable LES model (point charges, not
Gaussian ones; no k-space cutoff).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ase
import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from les_model.data.neighborlist import edge_vectors, neighbor_list
from les_model.electrostatics.coulomb import CoulombEnergy

__all__ = ['ion_molecule_pairs', 'label_point_charges', 'random_ionic_structures', 'water_like_box']


def random_ionic_structures(
    n_structures: int,
    n_atoms: int,
    density: float = 0.03,
    min_distance: float = 2.3,
    species: tuple[int, int] = (11, 17),
    seed: int = 0,
) -> list[ase.Atoms]:
    """Random neutral binary ionic structures in cubic periodic cells (half of each species).

    :param n_structures: number of structures.
    :param n_atoms: atoms per structure (even).
    :param density: number density in atoms/Å^3.
    :param min_distance: minimum interatomic distance (with periodic images) in Å.
    :param species: (cation, anion) atomic numbers.
    :param seed: RNG seed.
    """
    if n_atoms % 2:
        raise ValueError(f'n_atoms must be even (neutral binary salt), got {n_atoms}')
    rng = np.random.default_rng(seed)
    length = (n_atoms / density) ** (1.0 / 3.0)
    out = []
    for _ in range(n_structures):
        positions: list[np.ndarray] = []
        tries = 0
        while len(positions) < n_atoms:
            tries += 1
            if tries > 200_000:
                raise RuntimeError(f'could not place {n_atoms} atoms with min_distance {min_distance} Å')
            trial = rng.uniform(0.0, length, 3)
            if positions:
                d = np.asarray(positions) - trial
                d -= length * np.round(d / length)
                if np.min(np.linalg.norm(d, axis=1)) < min_distance:
                    continue
            positions.append(trial)
        numbers = [species[0]] * (n_atoms // 2) + [species[1]] * (n_atoms // 2)
        numbers = list(rng.permutation(numbers))
        out.append(ase.Atoms(numbers=numbers, positions=positions, cell=np.eye(3) * length, pbc=True))
    return out


def water_like_box(n_molecules: int, density: float = 0.0334, seed: int = 0) -> ase.Atoms:
    """A periodic box of randomly oriented H2O-shaped molecules on a jittered cubic grid (no labels).

    :param n_molecules: number of molecules (3 atoms each).
    :param density: molecules per Å^3 (liquid water: 0.0334).
    :param seed: RNG seed.
    """
    rng = np.random.default_rng(seed)
    length = (n_molecules / density) ** (1.0 / 3.0)
    n_side = int(np.ceil(n_molecules ** (1.0 / 3.0)))
    spacing = length / n_side
    grid = np.array([(i, j, k) for i in range(n_side) for j in range(n_side) for k in range(n_side)])[:n_molecules]
    angle = np.deg2rad(104.5)
    template = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [0.9572 * np.cos(angle), 0.9572 * np.sin(angle), 0.0]])
    positions = []
    for cell_index in grid:
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        centre = (cell_index + 0.5) * spacing + rng.uniform(-0.1, 0.1, 3)
        positions.extend(centre + template @ q.T)
    return ase.Atoms(numbers=[8, 1, 1] * n_molecules, positions=positions, cell=np.eye(3) * length, pbc=True)


def label_point_charges(
    atoms_list: Sequence[ase.Atoms],
    charges: Mapping[int, float],
    amplitude: float = 1000.0,
    rho: float = 0.3,
    cutoff: float = 6.0,
    total_charge: float | None = None,
) -> list[ase.Atoms]:
    """Attach energy, forces, stress (periodic) of the reference potential as a single-point calculator.

    :param atoms_list: structures (periodic in 3D or not at all).
    :param charges: atomic number -> fixed charge in e.
    :param amplitude: A, repulsion prefactor in eV.
    :param rho: repulsion decay length in Å.
    :param cutoff: repulsion cutoff in Å (energy shifted to zero there).
    :param total_charge: stored as ``atoms.info['total_charge']`` when given.
    :return: copies of the structures with labels (``atoms.info['charges_true']`` lists the charges too).
    """
    coulomb = CoulombEnergy(method='ewald', accuracy=1e-10)
    labelled = []
    for atoms in atoms_list:
        positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
        periodic = bool(atoms.pbc.all())
        cell0 = torch.tensor(atoms.cell.array, dtype=torch.float64)
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        pos = positions + positions @ strain
        cell = (cell0 + cell0 @ strain)[None]
        pbc = torch.tensor(atoms.pbc)[None]
        batch = torch.zeros(len(atoms), dtype=torch.int64)
        q = torch.tensor([charges[int(z)] for z in atoms.numbers], dtype=torch.float64)
        nl = neighbor_list(pos.detach(), cell.detach(), pbc, batch, cutoff)
        r = torch.linalg.norm(edge_vectors(pos, cell, batch, nl), dim=1)
        repulsion = 0.5 * amplitude * (torch.exp(-r / rho) - np.exp(-cutoff / rho)).sum()
        energy = repulsion + coulomb(pos, q, cell, pbc, batch, 1)[0]
        grad_pos, grad_strain = torch.autograd.grad(energy, [positions, strain])
        results = {'energy': float(energy.detach()), 'forces': (-grad_pos).numpy()}
        if periodic:
            stress = (grad_strain + grad_strain.T) / 2 / atoms.get_volume()
            results['stress'] = stress.numpy()[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **results)
        copy.arrays['charges_true'] = q.numpy()
        if total_charge is not None:
            copy.info['total_charge'] = float(total_charge)
        labelled.append(copy)
    return labelled


def ion_molecule_pairs(
    n_structures: int,
    distance_range: tuple[float, float],
    ion: tuple[int, float] = (11, 1.0),
    molecule: Sequence[tuple[int, float]] = ((1, 0.4), (9, -0.4)),
    n_molecules: int = 1,
    bond_length: float = 0.92,
    amplitude: float = 1000.0,
    rho: float = 0.3,
    min_separation: float = 3.0,
    seed: int = 0,
) -> list[ase.Atoms]:
    """A monatomic ion next to rigid neutral polar diatomics, labelled with exact point-charge Coulomb + a core.

    Energy (eV): ``sum_{i<j in different fragments} [k q_i q_j / r_ij + A exp(-r_ij / rho)]`` (the molecules are
    rigid, their internal energy a constant left out); forces are its exact derivatives. Molecules, not periodic;
    ``atoms.info['total_charge']`` is the ion's charge and ``atoms.arrays['charges_true']`` holds the point charges.
    Each molecule's centre sits at a distance uniform in ``distance_range`` (Å) from the ion in a random direction,
    randomly oriented, at least ``min_separation`` from the other molecules' centres.

    :param n_structures: number of structures.
    :param distance_range: (d_min, d_max) ion-centre distances in Å.
    :param ion: (atomic number, charge in e).
    :param molecule: two (atomic number, charge) pairs whose charges sum to 0.
    :param n_molecules: molecules per structure.
    :param bond_length: Å.
    :param amplitude: A in eV.
    :param rho: Å.
    :param min_separation: Å between molecule centres.
    :param seed: RNG seed.
    """
    from les_model.units import COULOMB_CONSTANT

    if abs(sum(q for _, q in molecule)) > 1e-12:
        raise ValueError(f'the molecule must be neutral, got charges {[q for _, q in molecule]}')
    rng = np.random.default_rng(seed)
    numbers = [ion[0]] + [z for z, _ in molecule] * n_molecules
    charges = torch.tensor([ion[1]] + [q for _, q in molecule] * n_molecules, dtype=torch.float64)
    fragment = torch.tensor([0] + [1 + k for k in range(n_molecules) for _ in molecule])
    other = fragment[:, None] != fragment[None, :]
    upper = torch.triu(torch.ones(len(numbers), len(numbers), dtype=torch.bool), diagonal=1)
    out = []
    while len(out) < n_structures:
        centres = []
        for _ in range(n_molecules):
            direction = rng.normal(size=3)
            centres.append(rng.uniform(*distance_range) * direction / np.linalg.norm(direction))
        if any(np.linalg.norm(a - b) < min_separation for k, a in enumerate(centres) for b in centres[:k]):
            continue
        positions = [np.zeros(3)]
        for centre in centres:
            rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            mol = np.array([[0.0, 0.0, 0.0], [bond_length, 0.0, 0.0]]) @ rotation.T
            positions.extend(mol - mol.mean(axis=0) + centre)
        pos = torch.tensor(np.array(positions), dtype=torch.float64, requires_grad=True)
        r = torch.cdist(pos, pos)
        pair = COULOMB_CONSTANT * charges[:, None] * charges[None, :] / r + amplitude * torch.exp(-r / rho)
        energy = pair[other & upper].sum()
        (grad,) = torch.autograd.grad(energy, pos)
        atoms = ase.Atoms(numbers=numbers, positions=pos.detach().numpy(), pbc=False)
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy.detach()), forces=(-grad).numpy())
        atoms.info['total_charge'] = float(ion[1])
        atoms.arrays['charges_true'] = charges.numpy()
        out.append(atoms)
    return out
