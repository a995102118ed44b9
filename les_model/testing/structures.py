r"""Reference ionic crystals with known Madelung constants, random test systems, and ase -> batch conversion.

Madelung constants :math:`M` are defined with respect to the nearest-neighbour distance :math:`r_0`: the Coulomb
energy per formula unit (one cation and one anion of charges :math:`\pm z`) is :math:`-M k_e z^2 / r_0`.
"""

from __future__ import annotations

import math

import ase
import numpy as np
import torch
from ase.build import make_supercell

__all__ = [
    'lennard_jones_nacl_frames',
    'MADELUNG',
    'batch_from_atoms',
    'cesium_chloride',
    'conventional_cell',
    'random_ionic_system',
    'rocksalt',
    'zincblende',
]

#: Madelung constants w.r.t. the nearest-neighbour distance.
MADELUNG = {
    'rocksalt': 1.747564594633,
    'cesium_chloride': 1.762674773070,
    'zincblende': 1.638055053388,
}

_FCC_TO_CUBIC = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])


def _ionic(symbols: str, cell, scaled, charge: float) -> ase.Atoms:
    atoms = ase.Atoms(symbols, cell=cell, scaled_positions=scaled, pbc=True)
    atoms.set_initial_charges([charge, -charge])
    return atoms


def rocksalt(r0: float = 2.82, charge: float = 1.0) -> ase.Atoms:
    """Primitive rock-salt (NaCl) cell with nearest-neighbour distance ``r0`` in Å (lattice constant ``2 r0``)."""
    a = 2.0 * r0
    cell = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return _ionic('NaCl', cell, [[0, 0, 0], [0.5, 0.5, 0.5]], charge)


def cesium_chloride(r0: float = 3.57, charge: float = 1.0) -> ase.Atoms:
    """Simple cubic CsCl cell with nearest-neighbour distance ``r0`` in Å (lattice constant ``2 r0 / sqrt(3)``)."""
    a = 2.0 * r0 / math.sqrt(3.0)
    return _ionic('CsCl', a * np.eye(3), [[0, 0, 0], [0.5, 0.5, 0.5]], charge)


def zincblende(r0: float = 2.34, charge: float = 1.0) -> ase.Atoms:
    """Primitive zinc-blende (ZnS) cell, nearest-neighbour distance ``r0`` in Å (lattice constant 4 r0 / sqrt(3))."""
    a = 4.0 * r0 / math.sqrt(3.0)
    cell = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return _ionic('ZnS', cell, [[0, 0, 0], [0.25, 0.25, 0.25]], charge)


def conventional_cell(primitive_fcc: ase.Atoms) -> ase.Atoms:
    """Cubic conventional cell (4 formula units) of a primitive cell from :func:`rocksalt` or :func:`zincblende`."""
    return make_supercell(primitive_fcc, _FCC_TO_CUBIC)


def random_ionic_system(
    n_atoms: int,
    density: float = 0.1,
    min_distance: float = 1.5,
    triclinic: bool = True,
    seed: int = 0,
    net_charge: float = 0.0,
) -> ase.Atoms:
    """Random periodic system with random charges summing to ``net_charge`` and no pair closer than ``min_distance``.

    :param n_atoms: number of atoms.
    :param density: number density in atoms / Å^3.
    :param min_distance: minimum pair distance in Å (random sequential placement with periodic images).
    :param triclinic: random skew of the cell (volume kept).
    :param seed: random seed.
    :param net_charge: total charge in e.
    :return: :class:`ase.Atoms` with ``initial_charges``.
    """
    rng = np.random.default_rng(seed)
    length = (n_atoms / density) ** (1.0 / 3.0)
    cell = length * np.eye(3)
    if triclinic:
        cell = cell + rng.uniform(-0.2, 0.2, size=(3, 3)) * length
        cell *= (n_atoms / density / abs(np.linalg.det(cell))) ** (1.0 / 3.0)
    frac = np.zeros((0, 3))
    while len(frac) < n_atoms:
        trial = rng.random(3)
        if len(frac):
            d = frac - trial
            d -= np.round(d)
            if np.linalg.norm(d @ cell, axis=1).min() < min_distance:
                continue
        frac = np.vstack([frac, trial])
    charges = rng.normal(size=n_atoms)
    charges += (net_charge - charges.sum()) / n_atoms
    atoms = ase.Atoms(f'H{n_atoms}', cell=cell, scaled_positions=frac, pbc=True)
    atoms.set_initial_charges(charges)
    return atoms


def batch_from_atoms(structures, dtype=torch.float64, device=None) -> dict:
    """Concatenate ase structures into the batch convention of :mod:`les_model.nn`.

    :param structures: iterable of :class:`ase.Atoms` (charges from ``initial_charges``).
    :return: dict with ``positions`` (N, 3), ``charges`` (N,), ``cell`` (B, 3, 3), ``pbc`` (B, 3), ``batch`` (N,),
        ``n_structures`` B.
    """
    structures = list(structures)

    def tensor(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)

    return {
        'positions': torch.cat([tensor(a.positions) for a in structures]),
        'charges': torch.cat([tensor(a.get_initial_charges()) for a in structures]),
        'cell': torch.stack([tensor(a.cell.array) for a in structures]),
        'pbc': torch.as_tensor(np.array([a.pbc for a in structures]), dtype=torch.bool, device=device),
        'batch': torch.cat(
            [torch.full((len(a),), s, dtype=torch.int64, device=device) for s, a in enumerate(structures)]
        ),
        'n_structures': len(structures),
    }


def lennard_jones_nacl_frames(n_frames: int, seed: int = 0) -> list[ase.Atoms]:
    """Rattled conventional NaCl cells (8 atoms, a = 5.64 Å) labelled with a Lennard-Jones potential (eV, eV/Å).

    :param n_frames: number of frames; frame ``k`` is rattled with seed ``seed + k`` (0.05 Å).
    :return: frames with energy and forces on a single-point calculator.
    """
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(stdev=0.05, seed=seed + index)
        atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames
