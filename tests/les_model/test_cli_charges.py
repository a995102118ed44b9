"""Charges through the programs a user runs: les-train orients the latent charges, les-eval reports sign-aware
dipole and Born-charge metrics (and none for a short-range model), and scales Born charges by 1/sqrt(eps_inf).
"""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
import torch
import yaml

from les_model.cli import evaluate, train
from les_model.cli.exit_codes import ExitCode
from les_model.data.atoms import atoms_to_batch
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.io import load_model

TINY_MODEL = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 1}
CHARGES = {11: 1.0, 17: -1.0}


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """NaCl clusters (not periodic) with energy, forces and the true point-charge dipole as labels."""
    path = tmp_path_factory.mktemp('charges')
    clusters = random_ionic_structures(8, 8, seed=4)
    for atoms in clusters:
        atoms.pbc = False
    frames = label_point_charges(clusters, CHARGES)
    for atoms in frames:
        atoms.info['dipole'] = (atoms.arrays['charges_true'][:, None] * atoms.positions).sum(axis=0)
    ase.io.write(path / 'data.extxyz', frames)
    return path


def _train(workdir, monkeypatch, name: str, **model):
    monkeypatch.chdir(workdir)
    config = {
        'train_file': 'data.extxyz',
        'epochs': 3,
        'batch_size': 2,
        'committee_size': 2,
        'valid_fraction': 0.0,
        'progress': False,
        'model_file': f'{name}.pt',
        'model': {**TINY_MODEL, 'cutoff': 3.5, **model},
    }
    (workdir / f'{name}.yaml').write_text(yaml.safe_dump(config))
    assert train.main([f'{name}.yaml', '--device', 'cpu', '--dtype', 'float64']) == ExitCode.SUCCESS
    return [workdir / f'{name}_{k}.pt' for k in range(2)]


def _evaluate(workdir, models, **options):
    config = {'models': [str(m) for m in models], 'data_file': 'data.extxyz', 'compute_bec': True, **options}
    (workdir / 'eval.yaml').write_text(yaml.safe_dump(config))
    assert evaluate.main(['eval.yaml', '--device', 'cpu']) == ExitCode.SUCCESS
    return json.loads((workdir / 'metrics.json').read_text()), ase.io.read(workdir / 'predictions.extxyz', ':')


def test_les_train_orients_every_member_and_les_eval_reports_sign_aware_metrics(workdir, monkeypatch):
    models = _train(workdir, monkeypatch, 'les')
    frames = ase.io.read(workdir / 'data.extxyz', ':')
    chlorine = np.concatenate([a.numbers == 17 for a in frames])
    for path in models:
        model = load_model(path)
        assert model.metadata['charge_sign_convention'] == 'electronegativity'
        charges = model(atoms_to_batch(frames), compute_forces=False)['charges'].detach().numpy()
        assert charges[chlorine].mean() < 0 < charges[~chlorine].mean(), path.name
    metrics, predictions = _evaluate(workdir, models)
    errors = metrics['errors']
    assert {'dipole_r2', 'dipole_r2_scaled', 'dipole_scale', 'dipole_rmse_scaled'} <= set(errors)
    # oriented charges: the best global scale between predicted and true dipoles is positive (right sign)
    assert errors['dipole_scale'] > 0
    assert errors['dipole_r2_scaled'] >= errors['dipole_r2']
    assert metrics['uncertainty']['max_charge_std']['max'] < 500  # me
    # Born charges divided by sqrt(eps_inf) when asked
    unscaled = np.array([a.arrays['les_bec'] for a in predictions])
    _, scaled_frames = _evaluate(workdir, models, eps_inf=4.0)
    np.testing.assert_allclose(
        np.array([a.arrays['les_bec'] for a in scaled_frames]), unscaled / 2.0, atol=1e-7
    )  # extxyz digits


def test_short_range_models_report_no_dipole_metrics(workdir, monkeypatch):
    models = _train(workdir, monkeypatch, 'short', long_range=False)
    metrics, _ = _evaluate(workdir, models)
    assert 'forces_rmse' in metrics['errors']
    assert not [key for key in metrics['errors'] if key.startswith(('dipole', 'bec'))]
    assert torch.load(models[0], weights_only=True)['metadata']['charge_sign_convention'] == 'none'
