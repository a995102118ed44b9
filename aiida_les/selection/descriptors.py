"""A cheap invariant structure descriptor for diversity selection and deduplication."""

from __future__ import annotations

import itertools

import ase
import numpy as np
from ase.neighborlist import neighbor_list


def structure_descriptor(
    atoms: ase.Atoms, species: list[str], cutoff: float = 5.0, n_bins: int = 24, width: float = 0.25
) -> np.ndarray:
    """Per-species-pair radial distribution, Gaussian-smeared and normalised per atom.

    Invariant to rotation, translation and permutation of like atoms, and intensive (a supercell gives the same
    vector), so frames of different sizes compare. Distances are in Å.

    :param atoms: the structure (periodic or not).
    :param species: element symbols fixing the pair order; every element of ``atoms`` must be listed.
    :param cutoff: largest pair distance counted, Å.
    :param n_bins: grid points per pair channel.
    :param width: Gaussian smearing, Å.
    :returns: vector of shape ``(n_pairs * n_bins,)`` with ``n_pairs = len(species) * (len(species) + 1) / 2``.
    """
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise ValueError(f'Elements {unknown} are not in the descriptor species {species}.')
    pairs = list(itertools.combinations_with_replacement(sorted(species), 2))
    grid = np.linspace(0.0, cutoff, n_bins)
    out = np.zeros((len(pairs), n_bins))
    if len(atoms) > 1:
        first, second, distance = neighbor_list('ijd', atoms, cutoff)
        keep = first < second  # each pair once
        names = np.asarray(symbols)
        for index, pair in enumerate(pairs):
            a, b = names[first[keep]], names[second[keep]]
            mask = ((a == pair[0]) & (b == pair[1])) | ((a == pair[1]) & (b == pair[0]))
            if np.any(mask):
                smeared = np.exp(-0.5 * ((grid[None, :] - distance[keep][mask, None]) / width) ** 2)
                out[index] = smeared.sum(axis=0)
    return (out / len(atoms)).ravel()
