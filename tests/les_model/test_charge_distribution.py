"""Net charge on the right fragment: an ion next to a neutral polar molecule, total charge +-1.

Truth (:func:`les_model.data.synthetic.ion_molecule_pairs`): point-charge ion (+-1 e) and a rigid diatomic with
+-0.4 e, exact Coulomb + an exponential core between the fragments. Trained with ion-molecule distances 2.5-9 Å,
tested at 5-10 Å (beyond the 4 Å cutoff, where only the long range sees the other fragment) with one molecule and,
for transferability of the net-charge distribution, with two.
"""

from __future__ import annotations

import pytest
import torch

from les_model.nn.charge_constraints import enforce_total_charge, structure_softmax
from les_model.testing.charged_fragment import (
    fragment_errors,
    fragment_test_sets,
    fragment_training_set,
    train_fragment_model,
)


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


@pytest.mark.parametrize('ion', [(11, 1.0), (17, -1.0)], ids=['cation', 'anion'])
def test_les_puts_the_net_charge_on_the_ion_and_beats_short_range_beyond_the_cutoff(ion):
    train = fragment_training_set(ion)
    les = train_fragment_model(train, long_range=True)
    short = train_fragment_model(train, long_range=False)
    for n_molecules, test in fragment_test_sets(ion).items():
        e_les, f_les, ion_charge = fragment_errors(les, test, ion[0])
        e_short, f_short, _ = fragment_errors(short, test, ion[0])
        assert float((ion_charge * ion[1]).min()) >= 0.9, f'{n_molecules} molecule(s): ion charge {ion_charge}'
        assert f_les < 0.5 * f_short, f'{n_molecules} molecule(s): force RMSE LES {f_les:.4f} vs SR {f_short:.4f}'
        assert e_les < 0.5 * e_short, f'{n_molecules} molecule(s): energy RMSE LES {e_les:.4f} vs SR {e_short:.4f}'
