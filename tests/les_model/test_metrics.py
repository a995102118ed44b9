"""Error metrics: dipoles and Born charges compared raw and after the best global scale."""

from __future__ import annotations

import pytest
import torch

from les_model import _keys as K
from les_model.train.metrics import ErrorAccumulator


def _batch(dipole_label):
    n = dipole_label.shape[0]
    return {
        K.N_ATOMS: torch.full((n,), 2),
        K.BATCH: torch.arange(n).repeat_interleave(2),
        K.CELL: torch.zeros(n, 3, 3),
        K.PBC: torch.zeros(n, 3, dtype=torch.bool),
        K.DIPOLE: dipole_label,
        K.DIPOLE_MASK: torch.ones(n, dtype=torch.bool),
    }


def test_a_flipped_and_halved_dipole_has_negative_raw_r2_and_perfect_scaled_r2():
    label = torch.tensor([[1.0, 0.0, -2.0], [0.5, 3.0, 1.0], [-1.0, -1.0, 0.0]], dtype=torch.float64)
    pred = {K.ENERGY: torch.zeros(3), K.DIPOLE: -0.5 * label, K.CHARGES: torch.ones(6)}
    acc = ErrorAccumulator()
    acc.update(pred, _batch(label), 0.0)
    out = acc.summary()
    assert out['dipole_scale'] == pytest.approx(-2.0)
    assert out['dipole_r2_scaled'] == pytest.approx(1.0)
    assert out['dipole_rmse_scaled'] == pytest.approx(0.0, abs=1e-9)
    mean = label.mean()
    expected_r2 = 1 - float((1.5 * label).square().sum() / (label - mean).square().sum())
    assert out['dipole_r2'] == pytest.approx(expected_r2)
    assert out['dipole_rmse'] == pytest.approx(1000 * float((1.5 * label).square().mean().sqrt()))


def test_no_dipole_metrics_without_latent_charges():
    label = torch.ones(2, 3, dtype=torch.float64)
    pred = {K.ENERGY: torch.zeros(2), K.DIPOLE: torch.zeros(2, 3), K.CHARGES: torch.zeros(4)}
    acc = ErrorAccumulator()
    acc.update(pred, _batch(label), 0.0)
    assert acc.summary() == {'loss': 0.0}
