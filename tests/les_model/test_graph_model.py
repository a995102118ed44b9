"""The TorchScript path (LesGraphModel, scripted) gives the native model's energies, forces, stress and charges."""

import ase
import numpy as np
import pytest
import torch

from les_model.calculator import LesCalculator
from les_model.config import ModelConfig
from les_model.nn.graph_model import LesGraphModel
from les_model.nn.model import LesModel

TINY = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 2, 'cutoff': 3.5}


def _models():
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        model = LesModel(ModelConfig(**TINY), species=[1, 8], reference_energies={1: -1.0, 8: -5.0}).double()
        with torch.no_grad():
            model.charge_head.weight_net[2].weight.normal_()
        models.append(model.eval())
    models[1].charge_sign.fill_(-1.0)
    return models


def _atoms(pbc: bool) -> ase.Atoms:
    rng = np.random.default_rng(1)
    grid = np.array([[i, j, 0] for i in range(3) for j in range(3)], dtype=float)
    scaled = (grid + 0.5) / np.array([3.0, 3.0, 1.0]) + rng.normal(0.0, 0.03, grid.shape)
    atoms = ase.Atoms('OH2OH2OH2', scaled_positions=scaled, cell=[[6.0, 0, 0], [1.2, 6.1, 0], [0.5, -0.9, 3.3]])
    atoms.pbc = pbc
    atoms.info['total_charge'] = -1.0  # exercises the net-charge distribution
    return atoms


@pytest.mark.parametrize('pbc', [True, False])
def test_scripted_calculator_matches_eager(pbc):
    models = _models()
    eager, scripted = _atoms(pbc), _atoms(pbc)
    eager.calc = LesCalculator(models)
    scripted.calc = LesCalculator(models, scripted=True)
    assert isinstance(scripted.calc.scripted[0], torch.jit.ScriptModule)
    assert abs(eager.get_potential_energy() - scripted.get_potential_energy()) < 1e-9
    np.testing.assert_allclose(scripted.get_forces(), eager.get_forces(), atol=1e-9, rtol=0)
    np.testing.assert_allclose(scripted.get_charges(), eager.get_charges(), atol=1e-9, rtol=0)
    assert scripted.get_charges().sum() == pytest.approx(-1.0, abs=1e-9)
    for key in ('dipole', 'max_force_std', 'committee_energies'):
        np.testing.assert_allclose(scripted.calc.results[key], eager.calc.results[key], atol=1e-9, rtol=0)
    if pbc:
        np.testing.assert_allclose(scripted.get_stress(), eager.get_stress(), atol=1e-9, rtol=0)


def test_graph_model_refuses_qeq():
    model = LesModel(ModelConfig(**TINY, charge_model='qeq'), species=[1, 8])
    with pytest.raises(NotImplementedError, match='QEq'):
        LesGraphModel(model)
