"""Net charge on the right fragment: an ion next to a neutral polar molecule, total charge +-1.

Truth (:func:`les_model.data.synthetic.ion_molecule_pairs`): point-charge ion (+-1 e) and a rigid diatomic with
+-0.4 e, exact Coulomb + an exponential core between the fragments. Trained with ion-molecule distances 2.5-9 Å,
tested at 5-10 Å (beyond the 4 Å cutoff, where only the long range sees the other fragment) with one molecule and,
for transferability of the net-charge distribution, with two.
"""

from __future__ import annotations

import pytest
import torch

from les_model import _keys as K
from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import ion_molecule_pairs
from les_model.nn.charge_constraints import enforce_total_charge, structure_softmax
from les_model.train.trainer import Trainer, initialise_model


def test_weighted_total_charge_constraint():
    raw = torch.tensor([0.3, -0.1, 0.5, 0.2, 0.2], dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1])
    weights = structure_softmax(torch.tensor([2.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64), batch, 2)
    torch.testing.assert_close(weights[:3].sum(), torch.tensor(1.0, dtype=torch.float64))
    q = enforce_total_charge(raw, batch, torch.tensor([1.0, 0.0], dtype=torch.float64), 2, weights=weights)
    assert float(q[:3].sum()) == pytest.approx(1.0)
    assert float(q[3:].sum()) == pytest.approx(0.0)
    # the missing charge (1 - 0.7 = 0.3) goes mostly to atom 0, whose weight is largest
    assert float(q[0] - raw[0]) == pytest.approx(0.3 * float(weights[0]))
    with pytest.raises(ValueError, match='weights must have the shape'):
        enforce_total_charge(raw, batch, None, 2, weights=weights[:3])


def _train(frames, long_range: bool, epochs: int = 25) -> Trainer:
    data = StructureDataset.from_atoms(frames)
    config = TrainConfig.from_dict(
        {
            'train_file': 'generated',
            'epochs': epochs,
            'batch_size': 4,
            'lr': 0.005,
            'ema_decay': 0.9,
            'scheduler': 'none',
            'forces_weight': 10.0,
            'valid_fraction': 0.0,
            'model': {
                'n_features': 16,
                'readout_hidden': 16,
                'charge_hidden': 16,
                'n_interactions': 1,
                'cutoff': 4.0,
                'long_range': long_range,
                'charge_embedding': False,
            },
        }
    )
    trainer = Trainer(
        config, initialise_model(config, data, 0), data, StructureDataset([]), torch.device('cpu'), torch.float64, 0
    )
    trainer.fit()
    return trainer


def _errors(model, frames, ion_z):
    batch = next(StructureDataset.from_atoms(frames).batches(len(frames), dtype=torch.float64))
    out = model(batch)
    energy = (out[K.ENERGY] - batch[K.ENERGY]).detach()
    energy = energy - energy.mean()  # a constant offset is not an error of the interaction
    forces = (out[K.FORCES] - batch[K.FORCES]).detach()
    ion_charge = out[K.CHARGES].detach()[batch[K.ATOMIC_NUMBERS] == ion_z]
    return float(energy.square().mean().sqrt()), float(forces.square().mean().sqrt()), ion_charge


@pytest.mark.parametrize('ion', [(11, 1.0), (17, -1.0)], ids=['cation', 'anion'])
def test_les_puts_the_net_charge_on_the_ion_and_beats_short_range_beyond_the_cutoff(ion):
    train = ion_molecule_pairs(40, (2.5, 9.0), ion=ion, seed=0)
    les = _train(train, long_range=True).model
    short = _train(train, long_range=False).model
    for n_molecules in (1, 2):
        test = ion_molecule_pairs(30, (5.0, 10.0), ion=ion, n_molecules=n_molecules, seed=1 + n_molecules)
        e_les, f_les, ion_charge = _errors(les, test, ion[0])
        e_short, f_short, _ = _errors(short, test, ion[0])
        assert float((ion_charge * ion[1]).min()) >= 0.9, f'{n_molecules} molecule(s): ion charge {ion_charge}'
        assert f_les < 0.5 * f_short, f'{n_molecules} molecule(s): force RMSE LES {f_les:.4f} vs SR {f_short:.4f}'
        assert e_les < 0.5 * e_short, f'{n_molecules} molecule(s): energy RMSE LES {e_les:.4f} vs SR {e_short:.4f}'
