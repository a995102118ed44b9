"""Branch folding of Berry-phase dipoles and central-difference Born charges (pure numpy, no CP2K)."""

import numpy as np
import pytest

from aiida_les.labelling.polarization import central_difference_born_charges, minimum_image_difference
from les_model.electrostatics.polarization import acoustic_sum_rule_violation, nearest_image

CELL = np.array([[5.0, 0.0, 0.0], [1.0, 6.0, 0.0], [0.5, -0.7, 7.0]])


def test_fold_dipole_lands_on_one_branch():
    """Folding removes whole lattice vectors only, and lands in lattice coordinates [-1/2, 1/2)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        dipole = rng.normal(scale=20.0, size=3)
        folded = nearest_image(dipole, CELL)
        frac = np.linalg.solve(CELL.T, folded)
        assert np.all(frac >= -0.5)
        assert np.all(frac < 0.5)
        shift = np.linalg.solve(CELL.T, dipole - folded)
        np.testing.assert_allclose(shift, np.round(shift), atol=1e-10)
        np.testing.assert_allclose(nearest_image(dipole + 3 * CELL[0] - 2 * CELL[2], CELL), folded, atol=1e-10)


def test_minimum_image_difference():
    """A small change seen across the branch cut (one quantum added) is recovered; molecules are left alone."""
    small = np.array([0.01, -0.02, 0.005])
    np.testing.assert_allclose(minimum_image_difference(small + CELL[1], CELL), small, atol=1e-12)
    np.testing.assert_allclose(minimum_image_difference(small - CELL[0] + CELL[2], CELL), small, atol=1e-12)
    np.testing.assert_allclose(minimum_image_difference(small + CELL[1], None), small + CELL[1])


def test_central_difference_of_rigid_point_charges():
    """Fixed point charges: Z*_k = q_k I exactly, also when a displaced dipole crossed the branch cut."""
    rng = np.random.default_rng(1)
    positions = rng.uniform(0.0, 5.0, size=(4, 3))
    charges = np.array([1.2, -0.7, 0.4, -0.9])
    h = 0.01
    plus, minus = np.empty((4, 3, 3)), np.empty((4, 3, 3))
    for k in range(4):
        for b in range(3):
            for sign, target in ((1, plus), (-1, minus)):
                moved = positions.copy()
                moved[k, b] += sign * h
                target[k, b] = nearest_image(charges @ moved, CELL)
    # One displaced dipole put on another branch, as a Berry phase may report it.
    plus[2, 1] += 2 * CELL[0]
    bec = central_difference_born_charges(plus, minus, h, CELL)
    np.testing.assert_allclose(bec, charges[:, None, None] * np.eye(3), atol=1e-9)
    assert acoustic_sum_rule_violation(bec, total_charge=charges.sum()) < 1e-9
    assert acoustic_sum_rule_violation(bec) == pytest.approx(abs(charges.sum()))


def test_central_difference_index_order():
    """Z*[k, a, b] = d mu_a / d u_kb: a dipole along x that grows when atom 0 moves along z gives Z*[0, x, z]."""
    plus, minus = np.zeros((1, 3, 3)), np.zeros((1, 3, 3))
    plus[0, 2] = [0.03, 0.0, 0.0]  # moving along z (b = 2) changes mu_x (a = 0)
    bec = central_difference_born_charges(plus, minus, 0.01)
    assert bec[0, 0, 2] == pytest.approx(1.5)
    assert np.count_nonzero(bec) == 1


def test_central_difference_refuses_bad_input():
    with pytest.raises(ValueError, match='shape'):
        central_difference_born_charges(np.zeros((2, 3)), np.zeros((2, 3)), 0.01)
    with pytest.raises(ValueError, match='displacement'):
        central_difference_born_charges(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), 0.0)
