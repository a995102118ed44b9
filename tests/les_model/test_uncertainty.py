"""Committee statistics after sign alignment: members whose latent charges differ only in sign agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.calculator import LesCalculator
from les_model.config import ModelConfig
from les_model.io import save_model
from les_model.nn.model import LesModel
from les_model.testing.models import TINY_MODEL
from les_model.testing.structures import random_ionic_system
from les_model.uncertainty import align_charge_signs, committee_statistics


def test_opposite_raw_signs_give_zero_charge_disagreement():
    charges = torch.tensor([-0.8, 0.4, 0.4, 0.3, -0.1, 0.8])
    dipole = torch.tensor([[0.1, 0.2, 0.3], [1.0, 0.0, 0.0]])
    bec = torch.randn(6, 3, 3)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    total = torch.tensor([0.0, 1.0])
    first = {K.ENERGY: torch.zeros(2), K.CHARGES: charges, K.DIPOLE: dipole, K.BEC: bec}
    # the second member has the opposite sign on the neutral structure 0; the charged structure 1 (+1 e) has its
    # sign fixed by the total charge, so it is the same in both members and must not be flipped
    second = {
        K.ENERGY: torch.zeros(2),
        K.CHARGES: torch.cat([-charges[:3], charges[3:]]),
        K.DIPOLE: torch.stack([-dipole[0], dipole[1]]),
        K.BEC: torch.cat([-bec[:3], bec[3:]]),
    }
    aligned, signs = align_charge_signs([first, second], batch, total)
    assert signs == [1, -1]
    stats = committee_statistics([first, second], batch, torch.tensor([3, 3]), total)
    np.testing.assert_allclose(stats['max_charge_std'].numpy(), [0.0, 0.0], atol=1e-7)
    torch.testing.assert_close(stats[K.CHARGES], charges)
    torch.testing.assert_close(stats[K.DIPOLE], dipole)
    torch.testing.assert_close(stats[K.BEC], bec)


def test_without_alignment_the_same_committee_would_disagree_by_the_charge_itself():
    charges = torch.tensor([-0.8, 0.4, 0.4])
    members = [{K.ENERGY: torch.zeros(1), K.CHARGES: charges}, {K.ENERGY: torch.zeros(1), K.CHARGES: -charges}]
    stats = committee_statistics(members, torch.zeros(3, dtype=torch.long), torch.tensor([3]))
    assert float(stats['max_charge_std'][0]) == pytest.approx(0.0, abs=1e-7)
    raw_std = torch.stack([m[K.CHARGES] for m in members]).std(dim=0, unbiased=False).max()
    assert float(raw_std) == pytest.approx(0.8)  # what max_charge_std read before alignment


def test_calculator_committee_of_a_model_and_its_sign_flipped_copy(tmp_path):
    """Through the ASE calculator (what les-md and les-eval use): same model, opposite sign conventions."""
    torch.manual_seed(0)
    model = LesModel(ModelConfig(**TINY_MODEL), species=[1, 8]).double()
    plain = save_model(model, tmp_path / 'plain.pt')
    model.charge_sign.fill_(-1.0)
    flipped = save_model(model, tmp_path / 'flipped.pt')
    atoms = random_ionic_system(9, density=0.05, min_distance=1.2, seed=3)
    atoms.numbers = [8, 1, 1] * 3
    atoms.set_initial_charges(None)
    atoms.calc = LesCalculator([plain, flipped], device='cpu', compute_bec=True)
    atoms.get_potential_energy()
    results = atoms.calc.results
    assert results['max_charge_std'] == pytest.approx(0.0, abs=1e-10)
    assert results['max_force_std'] == pytest.approx(0.0, abs=1e-10)
    single = LesCalculator(plain, device='cpu', compute_bec=True)
    single.calculate(atoms, ['energy', 'bec'])
    np.testing.assert_allclose(results['charges'], single.results['charges'], atol=1e-12)
    np.testing.assert_allclose(results['dipole'], single.results['dipole'], atol=1e-12)
    np.testing.assert_allclose(results['bec'], single.results['bec'], atol=1e-12)
