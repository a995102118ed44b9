"""Initial training frames when a campaign starts without a dataset: seeds plus rattled and strained copies."""

from __future__ import annotations

import ase
import numpy as np


def perturbed_copies(
    atoms: ase.Atoms, n_copies: int, rattle: float = 0.05, max_strain: float = 0.03, seed: int = 0
) -> list[ase.Atoms]:
    """Return ``n_copies`` perturbed copies of ``atoms``.

    Each copy has Gaussian displacements of standard deviation ``rattle`` (Å) on every atom and, for periodic
    structures, a random symmetric strain with components uniform in ``[-max_strain, max_strain]`` applied to cell and
    positions together. ``atoms.info`` (total charge, multiplicity) is kept.

    :raises ValueError: on negative amplitudes or a non-positive number of copies.
    """
    if n_copies < 1:
        raise ValueError(f'n_copies must be >= 1, got {n_copies}.')
    if rattle < 0 or max_strain < 0:
        raise ValueError(f'rattle and max_strain must be >= 0, got {rattle} and {max_strain}.')
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(n_copies):
        copy = atoms.copy()
        if copy.pbc.all() and max_strain > 0:
            strain = rng.uniform(-max_strain, max_strain, size=(3, 3))
            strain = 0.5 * (strain + strain.T)
            copy.set_cell(copy.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        copy.positions += rng.normal(scale=rattle, size=copy.positions.shape)
        copies.append(copy)
    return copies
