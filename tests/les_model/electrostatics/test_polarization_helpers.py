"""Polarization-quantum folding, acoustic sum rule and 1/sqrt(eps_inf): one implementation for numpy and torch."""

import numpy as np
import pytest
import torch

from les_model.electrostatics.polarization import (
    acoustic_sum_rule_violation,
    born_charge_sums,
    divide_by_sqrt_eps_inf,
    enforce_acoustic_sum_rule,
    lattice_coordinates,
    nearest_image,
)

CELL = np.array([[5.0, 0.0, 0.0], [1.0, 6.0, 0.0], [0.5, -0.7, 7.0]])


def test_nearest_image_removes_a_lattice_vector_and_lands_on_one_branch():
    rng = np.random.default_rng(0)
    vectors = rng.normal(scale=20.0, size=(50, 3))
    folded = nearest_image(vectors, CELL)
    frac = lattice_coordinates(folded, CELL)
    assert np.all(frac >= -0.5)
    assert np.all(frac < 0.5)
    shift = lattice_coordinates(vectors - folded, CELL)
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)  # an integer combination of lattice vectors
    # torch, batched cells (one cell per vector): the same numbers, and the fold does not change the gradient
    tensor = torch.tensor(vectors, requires_grad=True)
    cells = torch.tensor(CELL).expand(50, 3, 3)
    folded_t = nearest_image(tensor, cells)
    np.testing.assert_allclose(folded_t.detach().numpy(), folded, rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad((folded_t * torch.arange(3.0, dtype=torch.float64)).sum(), tensor)
    np.testing.assert_allclose(grad.numpy(), np.tile([0.0, 1.0, 2.0], (50, 1)))


def test_acoustic_sum_rule_enforced_per_structure_for_numpy_and_torch():
    rng = np.random.default_rng(1)
    born = rng.normal(size=(7, 3, 3))
    fixed = enforce_acoustic_sum_rule(born)
    assert isinstance(fixed, np.ndarray)
    assert acoustic_sum_rule_violation(born) > 0.1
    assert acoustic_sum_rule_violation(fixed) < 1e-12
    np.testing.assert_allclose(fixed - born, np.broadcast_to(-born.mean(axis=0), born.shape), atol=1e-12)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    fixed_t = enforce_acoustic_sum_rule(torch.tensor(born), batch, 2)
    assert float(born_charge_sums(fixed_t, batch, 2).abs().max()) < 1e-12
    np.testing.assert_allclose(fixed_t[3:].numpy(), enforce_acoustic_sum_rule(born[3:]), atol=1e-12)
    # a charged structure: sum_k Z*_k = Q I
    charged = np.stack([np.eye(3) * q for q in (1.0, 1.0, -0.5)])
    assert acoustic_sum_rule_violation(charged, total_charge=1.5) < 1e-12


def test_divide_by_sqrt_eps_inf_numpy_torch_and_refusal():
    born = np.full((2, 3, 3), 2.0)
    np.testing.assert_allclose(divide_by_sqrt_eps_inf(born, 4.0), 1.0)
    assert torch.allclose(divide_by_sqrt_eps_inf(torch.tensor(born), 4.0), torch.ones(2, 3, 3, dtype=torch.float64))
    assert divide_by_sqrt_eps_inf(3.0, 9.0) == pytest.approx(1.0)
    for bad in (0.0, -1.0, None):
        with pytest.raises(ValueError, match='eps_inf must be > 0'):
            divide_by_sqrt_eps_inf(born, bad)
