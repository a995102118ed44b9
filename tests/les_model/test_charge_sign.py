"""The latent-charge sign convention: electronegativity table, exact flip symmetry, orientation during training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.config import ModelConfig
from les_model.data.atoms import atoms_to_batch
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.io import load_model, save_model
from les_model.nn.charge_sign import PAULING_ELECTRONEGATIVITY, orientation_score
from les_model.nn.model import LesModel
from les_model.testing.models import TINY_MODEL, fit_in_memory


def test_pauling_table_matches_pymatgen():
    """Independent reference: pymatgen's Element.X (Pauling) for every element the table lists or lacks."""
    pytest.importorskip('pymatgen')
    from pymatgen.core import Element

    for z in range(1, 104):
        reference = Element.from_Z(z).X
        if math.isnan(reference):
            assert z not in PAULING_ELECTRONEGATIVITY, z
        else:
            assert PAULING_ELECTRONEGATIVITY[z] == pytest.approx(reference, abs=1e-9), z


def test_orientation_score_is_negative_for_physical_water_and_skips_charged_structures():
    numbers = torch.tensor([8, 1, 1, 8, 1, 1])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    charges = torch.tensor([-0.8, 0.4, 0.4, 0.5, 0.25, 0.25], dtype=torch.float64)
    # structure 1 carries +1 e: left out whatever its charges say
    score = orientation_score(charges, numbers, batch, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert score == pytest.approx(-0.8 * 3.44 + 0.8 * 2.20)
    assert orientation_score(-charges, numbers, batch, torch.tensor([0.0, 1.0], dtype=torch.float64)) > 0


@pytest.mark.parametrize('charge_model', ['latent', 'qeq'])
def test_flipping_the_sign_negates_charges_dipole_and_bec_but_not_energy(charge_model):
    config = ModelConfig.from_dict({**TINY_MODEL, 'charge_model': charge_model})
    torch.manual_seed(0)
    model = LesModel(config, [11, 17]).double()
    neutral, charged = random_ionic_structures(2, 8, seed=1)
    neutral.pbc = False  # a molecule and a periodic cell
    charged.info['total_charge'] = 1.0
    data = atoms_to_batch([neutral, charged], dtype=torch.float64)
    before = model(data, compute_bec=True)
    model.charge_sign.fill_(-1.0)
    after = model(data, compute_bec=True)
    first = data[K.BATCH] == 0
    torch.testing.assert_close(after[K.ENERGY][0], before[K.ENERGY][0])
    torch.testing.assert_close(after[K.FORCES][first], before[K.FORCES][first])
    torch.testing.assert_close(after[K.CHARGES][first], -before[K.CHARGES][first])
    torch.testing.assert_close(after[K.DIPOLE][0], -before[K.DIPOLE][0])
    torch.testing.assert_close(after[K.BEC][first], -before[K.BEC][first])
    # the charged structure keeps its total charge under either sign
    assert float(after[K.CHARGES][~first].sum()) == pytest.approx(1.0, abs=1e-10)


def test_sign_is_saved_in_the_model_file_and_old_files_load_unoriented(tmp_path):
    torch.manual_seed(0)
    model = LesModel(ModelConfig.from_dict(TINY_MODEL), [11, 17]).double()
    model.charge_sign.fill_(-1.0)
    path = save_model(model, tmp_path / 'model.pt')
    assert float(load_model(path).charge_sign) == -1.0
    # a file written before the convention existed: no buffer, no charge_distribution key
    payload = torch.load(path, weights_only=True)
    del payload['state_dict']['charge_sign']
    payload['model_config'].pop('charge_distribution')
    for key in [k for k in payload['state_dict'] if 'weight_net' in k]:
        del payload['state_dict'][key]
    torch.save(payload, tmp_path / 'old.pt')
    old = load_model(tmp_path / 'old.pt')
    assert float(old.charge_sign) == 1.0
    assert old.config.charge_distribution == 'uniform'


def _train_member(frames, seed: int, epochs: int = 4, **options):
    model = {**TINY_MODEL, 'charge_embedding': False}
    settings = {'epochs': epochs, 'batch_size': 2, 'lr': 0.01, 'scheduler': 'none', 'model': model, **options}
    return fit_in_memory(frames, settings, seed)


def test_members_trained_with_different_seeds_agree_on_the_physical_sign():
    """Energy/force-only training on neutral NaCl point charges: every member puts the negative charge on Cl
    (more electronegative), the charges follow the truth with a positive slope, and every epoch's entry records it.
    """
    frames = label_point_charges(random_ionic_structures(8, 8, seed=3), {11: 1.0, 17: -1.0})
    batch = atoms_to_batch(frames, dtype=torch.float64)
    chlorine = batch[K.ATOMIC_NUMBERS] == 17
    for seed in range(4):
        trainer = _train_member(frames, seed)
        assert trainer.charge_convention == 'electronegativity'
        charges = trainer.model(batch, compute_forces=False)[K.CHARGES].detach()
        assert float(charges[chlorine].mean()) < 0.0, f'seed {seed}: q(Cl) = {float(charges[chlorine].mean()):.3f}'
        assert all(entry['charge_orientation_score'] is not None for entry in trainer.history)
        assert trainer.history[-1]['charge_sign'] == float(trainer.model.charge_sign)


def test_dipole_labels_or_charged_data_take_precedence_over_the_convention():
    neutral = label_point_charges(random_ionic_structures(2, 8, seed=3), {11: 1.0, 17: -1.0})
    for atoms in neutral:
        atoms.info['dipole'] = np.zeros(3)
    assert _train_member(neutral, 0, epochs=1, dipole_weight=1.0).charge_convention == 'labels'
    charged = label_point_charges(random_ionic_structures(2, 8, seed=3), {11: 1.0, 17: -1.0}, total_charge=1.0)
    assert _train_member(charged, 0, epochs=1).charge_convention == 'total_charge'
