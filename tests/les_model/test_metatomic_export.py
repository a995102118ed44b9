"""Exported metatomic model (TorchScript) against the native model: energy, forces, stress and charges (float64)."""

import ase
import numpy as np
import pytest
import torch

pytest.importorskip('metatomic.torch')
metatomic_ase = pytest.importorskip('metatomic_ase')

from metatomic.torch import ModelOutput  # noqa: E402

from les_model.calculator import LesCalculator  # noqa: E402
from les_model.cli.export import main as export_main  # noqa: E402
from les_model.config import ModelConfig  # noqa: E402
from les_model.io import save_model  # noqa: E402
from les_model.metatomic_model import CHARGES_OUTPUT, metatomic_model  # noqa: E402
from les_model.nn.model import LesModel  # noqa: E402

TINY = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 2, 'cutoff': 3.5}
TOL = 1e-6  # eV, eV/Å, eV/Å^3, e


def _committee(n=2, backend='auto'):
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = LesModel(ModelConfig(**TINY), species=[1, 8], reference_energies={1: -1.0, 8: -5.0}).double()
        with torch.no_grad():  # a non-uniform learned net-charge distribution (it starts uniform)
            model.charge_head.weight_net[2].weight.normal_()
            model.charge_head.weight_net[2].bias.normal_()
            model.energy_scale.fill_(0.7)
        model.long_range.backend = backend
        models.append(model.eval())
    if n > 1:
        models[1].charge_sign.fill_(-1.0)  # a member with the opposite sign convention
    return models


def _water_like(cell, pbc, seed=0):
    """Three O + six H on a rattled grid (no close contacts)."""
    rng = np.random.default_rng(seed)
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(1)], dtype=float)
    scaled = (grid + 0.5) / np.array([3.0, 3.0, 1.0]) + rng.normal(0.0, 0.03, grid.shape)
    atoms = ase.Atoms('OH2OH2OH2', scaled_positions=scaled, cell=cell, pbc=pbc)
    if not atoms.pbc.any():
        atoms.cell = np.zeros((3, 3))
    return atoms


STRUCTURES = {
    'periodic_box': lambda: _water_like(np.diag([6.0, 6.5, 3.2]), True),
    'molecule': lambda: _water_like(np.diag([5.0, 5.0, 2.5]), False),
    'triclinic': lambda: _water_like([[6.0, 0.0, 0.0], [1.5, 6.2, 0.0], [0.8, -1.1, 3.4]], True),
}


def _compare(models, atoms, exported, charge_key_info=None):
    native = atoms.copy()
    native.calc = LesCalculator(models)
    outputs = {CHARGES_OUTPUT: ModelOutput(unit='e', sample_kind='atom')}
    calc = metatomic_ase.MetatomicCalculator(exported, additional_outputs=outputs)
    mta = atoms.copy()
    mta.calc = calc
    diffs = {
        'energy': abs(native.get_potential_energy() - mta.get_potential_energy()),
        'forces': np.abs(native.get_forces() - mta.get_forces()).max(),
    }
    if atoms.pbc.all():
        diffs['stress'] = np.abs(native.get_stress() - mta.get_stress()).max()
    charges = calc.additional_outputs[CHARGES_OUTPUT].block().values.detach().numpy().ravel()
    diffs['charges'] = np.abs(native.calc.results['charges'] - charges).max()
    assert np.abs(native.get_forces()).max() > 1e-3  # not a trivially zero comparison
    assert np.abs(charges).max() > 1e-3
    return diffs, native, calc


@pytest.fixture(scope='module')
def committee():
    models = _committee()
    return models, metatomic_model(models)


@pytest.mark.parametrize('name', sorted(STRUCTURES))
def test_committee_parity_through_metatomic_ase(committee, name):
    models, exported = committee
    diffs, native, calc = _compare(models, STRUCTURES[name](), exported)
    assert max(diffs.values()) < TOL, diffs
    # committee outputs: the member energies and their population standard deviation
    members = native.calc.results['committee_energies']
    out = calc.run_model(
        native, {'energy_ensemble': ModelOutput(unit='eV'), 'energy_uncertainty': ModelOutput(unit='eV')}
    )
    ensemble = out['energy_ensemble'].block().values.detach().numpy().ravel()
    np.testing.assert_allclose(ensemble, members, atol=TOL, rtol=0)
    assert abs(members[0] - members[1]) > 1e-3
    np.testing.assert_allclose(float(out['energy_uncertainty'].block().values), np.std(members), atol=TOL, rtol=0)


def test_mesh_backend_parity():
    models = _committee(n=1, backend='mesh')
    diffs, _, _ = _compare(models, STRUCTURES['triclinic'](), metatomic_model(models))
    assert max(diffs.values()) < TOL, diffs


def test_charged_structure_with_total_charge_input():
    models = _committee(n=1)
    atoms = STRUCTURES['periodic_box']()
    atoms.info['total_charge'] = 1.0  # read by LesCalculator
    atoms.info['charge'] = 1.0  # read by metatomic-ase
    diffs, _, calc = _compare(models, atoms, metatomic_model(models, total_charge_input=True))
    assert max(diffs.values()) < TOL, diffs
    charges = calc.additional_outputs[CHARGES_OUTPUT].block().values.detach().sum()
    assert float(charges) == pytest.approx(1.0, abs=1e-10)


def test_les_export_main_writes_a_loadable_committee(tmp_path, capsys):
    models = _committee()
    paths = [str(save_model(m, tmp_path / f'member_{i}.pt')) for i, m in enumerate(models)]
    out = tmp_path / 'model.pt'
    assert export_main([*paths, '-o', str(out)]) == 0
    assert 'wrote' in capsys.readouterr().out
    diffs, _, calc = _compare(models, STRUCTURES['triclinic'](), str(out))
    assert max(diffs.values()) < TOL, diffs
    model = calc.model()
    capabilities = model.capabilities()
    assert capabilities.length_unit == 'angstrom'
    assert capabilities.outputs['energy'].unit == 'eV'
    assert model.requested_neighbor_lists()[0].cutoff == pytest.approx(TINY['cutoff'])
    assert model.requested_neighbor_lists()[0].full_list
    assert export_main([str(tmp_path / 'missing.pt'), '-o', str(out)]) == 4


def test_mace_host_parity():
    pytest.importorskip('mace')
    config = ModelConfig(
        backbone='mace', n_features=8, cutoff=3.5, mace={'num_interactions': 1, 'correlation': 2, 'max_ell': 1}
    )
    torch.manual_seed(0)
    model = LesModel(config, species=[1, 8], reference_energies={1: -1.0, 8: -5.0}).double().eval()
    diffs, _, _ = _compare([model], STRUCTURES['triclinic'](), metatomic_model([model]))
    assert max(diffs.values()) < TOL, diffs
