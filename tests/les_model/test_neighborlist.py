"""Tests for les_model.data.neighborlist against a brute-force image search."""

import itertools

import numpy as np
import pytest
import torch

from les_model.data.neighborlist import NeighborList, edge_vectors, neighbor_list
from les_model.testing.physics import check_stress
from les_model.testing.structures import batch_from_atoms, random_ionic_system


def _brute_force(positions, cell, pbc, cutoff):
    """Set of (i, j, n1, n2, n3) with |r_j - r_i + n @ cell| < cutoff, no self pair at zero shift."""
    pairs = set()
    ranges = [range(-3, 4) if p else range(1) for p in pbc]
    for shift in itertools.product(*ranges):
        vec = np.asarray(shift, dtype=float) @ cell
        d = positions[None, :, :] - positions[:, None, :] + vec
        dist = np.linalg.norm(d, axis=-1)
        for i, j in zip(*np.nonzero(dist < cutoff), strict=True):
            if i == j and not any(shift):
                continue
            pairs.add((int(i), int(j), *shift))
    return pairs


def _as_set(nl, offset=0):
    ij = nl.edge_index.T.tolist()
    shifts = nl.cell_shifts.round().to(torch.int64).tolist()
    return {(i - offset, j - offset, *s) for (i, j), s in zip(ij, shifts, strict=True)}


@pytest.mark.parametrize('pbc', [(True, True, True), (True, True, False), (False, False, False)])
def test_matches_brute_force(pbc):
    atoms = random_ionic_system(20, density=0.08, seed=3)
    atoms.pbc = pbc
    data = batch_from_atoms([atoms])
    data['pbc'] = torch.tensor([pbc])
    if not any(pbc):
        data['cell'] = torch.zeros(1, 3, 3, dtype=torch.float64)
    nl = neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 4.0)
    expected = _brute_force(atoms.positions, atoms.cell.array, pbc, 4.0)
    assert _as_set(nl) == expected
    vectors = edge_vectors(data['positions'], data['cell'], data['batch'], nl)
    assert bool((torch.linalg.norm(vectors, dim=1) < 4.0).all())
    assert torch.allclose(
        vectors, data['positions'][nl.edge_index[1]] - data['positions'][nl.edge_index[0]] + nl.shifts
    )


def test_batch_offsets_and_cutoff_larger_than_cell():
    small = random_ionic_system(4, density=0.05, seed=1)
    big = random_ionic_system(12, density=0.05, seed=2)
    data = batch_from_atoms([small, big])
    nl = neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 6.0)
    mask0 = nl.edge_index[0] < 4
    assert bool((nl.edge_index[1][mask0] < 4).all())
    assert bool((nl.edge_index[1][~mask0] >= 4).all())
    first = NeighborList(nl.edge_index[:, mask0], nl.shifts[mask0], nl.cell_shifts[mask0])
    assert _as_set(first) == _brute_force(small.positions, small.cell.array, (True,) * 3, 6.0)


def test_pair_potential_stress_through_cell_gradient():
    atoms = random_ionic_system(8, density=0.05, seed=5)
    data = batch_from_atoms([atoms])
    nl = neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 5.0)

    def energy_fn(positions, cell):
        r = torch.linalg.norm(edge_vectors(positions, cell, data['batch'], nl), dim=1)
        return (torch.exp(-r) * (5.0 - r) ** 2).sum().reshape(1)

    check_stress(energy_fn, data['positions'], data['cell'], data['batch'], atol=1e-8, rtol=1e-5)


def test_rejects_bad_cutoff():
    data = batch_from_atoms([random_ionic_system(4, seed=0)])
    with pytest.raises(ValueError, match='cutoff must be > 0'):
        neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 0.0)


def test_half_list_holds_each_pair_once():
    atoms = random_ionic_system(10, density=0.08, seed=6)
    data = batch_from_atoms([atoms])
    full = _as_set(neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 6.0))
    half = _as_set(neighbor_list(data['positions'], data['cell'], data['pbc'], data['batch'], 6.0, full_list=False))
    reversed_half = {(j, i, -a, -b, -c) for i, j, a, b, c in half}
    assert len(half) * 2 == len(full)
    assert half | reversed_half == full
