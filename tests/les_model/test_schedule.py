"""Learning-rate warm-up and decay; the per-epoch E0 refit that keeps the energy offset from drifting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.config import ModelConfig
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.nn.model import LesModel
from les_model.train.offset import refit_reference_energies
from les_model.train.schedule import LearningRateSchedule


def _optimizer():
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_warm_up_is_linear_per_step_then_cosine_reaches_min_lr():
    opt = _optimizer()
    schedule = LearningRateSchedule(opt, 'cosine', lr=0.01, min_lr=1e-4, epochs=10, steps_per_epoch=4, warmup_epochs=1)
    rates = []
    for step in range(4):
        schedule.before_step(step)
        rates.append(opt.param_groups[0]['lr'])
    assert rates == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    schedule.after_epoch(10, 0.0)
    assert schedule.current(40) == pytest.approx(1e-4)
    schedule.after_epoch(1, 0.0)
    assert schedule.current(4) == pytest.approx(0.01)  # cosine starts after the warm-up


def test_plateau_lowers_the_rate_after_patience_and_resumes_from_its_state():
    opt = _optimizer()
    schedule = LearningRateSchedule(opt, 'plateau', 0.01, 1e-6, epochs=50, steps_per_epoch=2, patience=2, factor=0.5)
    schedule.after_epoch(1, 1.0)
    for epoch in (2, 3):
        schedule.after_epoch(epoch, 1.0)
        assert schedule.current(10) == pytest.approx(0.01)
    schedule.after_epoch(4, 1.0)  # third epoch without improvement
    assert schedule.current(10) == pytest.approx(0.005)
    again = LearningRateSchedule(_optimizer(), 'plateau', 0.01, 1e-6, epochs=50, steps_per_epoch=2, patience=2)
    again.load_state_dict(schedule.state_dict())
    assert again.current(10) == pytest.approx(0.005)


def test_refit_removes_the_uniform_energy_offset_along_the_determined_direction():
    frames = label_point_charges(random_ionic_structures(4, 8, seed=8), {11: 1.0, 17: -1.0})
    data = StructureDataset.from_atoms(frames)
    torch.manual_seed(0)
    config = ModelConfig(n_features=8, n_radial=4, readout_hidden=8, charge_hidden=8, n_interactions=1, cutoff=3.5)
    model = LesModel(config, [11, 17], {11: 0.3, 17: -0.1}).double()

    def residuals():
        batch = next(data.batches(len(data)))
        return (batch[K.ENERGY] - model(batch, compute_forces=False)[K.ENERGY]).detach().numpy()

    before = residuals()
    delta = refit_reference_energies(model, data, 2, torch.float64, torch.device('cpu'))
    after = residuals()
    assert delta[0] == pytest.approx(delta[1])  # every frame Na4Cl4: only E0_Na + E0_Cl is determined
    assert abs(after.mean()) < 1e-9
    np.testing.assert_allclose(after - after.mean(), before - before.mean(), atol=1e-9)  # the spread is untouched
