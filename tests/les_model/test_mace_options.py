"""The MACE host's options: checked before anything runs, mace_run_train spellings, data statistics, quiet start."""

from __future__ import annotations

import importlib.util
import warnings

import ase.io
import pytest
import yaml

from les_model.cli import train
from les_model.cli.exit_codes import ExitCode
from les_model.config import ModelConfig, TrainConfig, validate_config
from les_model.data.dataset import StructureDataset
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.io import load_model
from les_model.nn.mace_options import mace_arguments

needs_mace = pytest.mark.skipif(importlib.util.find_spec('mace') is None, reason='needs mace-torch')
SMALL_MACE = {'num_channels': 8, 'max_L': 1, 'max_ell': 1, 'correlation': 2, 'num_interactions': 1}


def _write(tmp_path, model):
    frames = label_point_charges(random_ionic_structures(4, 8, seed=6), {11: 1.0, 17: -1.0})
    ase.io.write(tmp_path / 'data.extxyz', frames)
    config = {
        'train_file': 'data.extxyz',
        'epochs': 1,
        'batch_size': 2,
        'valid_fraction': 0.25,
        'progress': False,
        'device': 'cpu',
        'model': model,
    }
    (tmp_path / 'train.yaml').write_text(yaml.safe_dump(config))


def test_unknown_mace_key_is_an_invalid_config_listing_the_allowed_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {'backbone': 'mace', 'cutoff': 3.5, 'mace': {'max_l': 2}})
    assert train.main(['train.yaml']) == ExitCode.INVALID_CONFIG
    err = capsys.readouterr().err
    assert "mace: unknown key 'max_l'; allowed keys are [" in err
    for key in ('max_L', 'num_channels', 'num_radial_basis', 'max_ell', 'correlation', 'num_interactions'):
        assert repr(key) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data.extxyz', 'train.yaml']  # nothing computed
    # the AiiDA pre-submission check sees the same problem
    errors = validate_config({'train_file': 'x', 'model': {'backbone': 'mace', 'mace': {'max_l': 2}}}, 'train')
    assert any("unknown key 'max_l'" in e for e in errors)


def test_mpnn_settings_are_refused_with_the_mace_backbone():
    errors = validate_config(
        {'train_file': 'x', 'model': {'backbone': 'mace', 'n_interactions': 3, 'angular': False, 'n_radial': 8}},
        'train',
    )
    assert any(
        'n_interactions (= 3) applies to the mpnn backbone only; with mace use mace.num_interactions' in e
        for e in errors
    )
    assert any('angular (= False) applies to the mpnn backbone only' in e for e in errors)
    assert not any('n_radial' in e for e in errors)  # the default value is not a setting
    assert validate_config({'train_file': 'x', 'model': {'mace': {'max_L': 2}}}, 'train') == [
        "TrainConfig.model: mace options ['max_L'] apply only with backbone: mace"
    ]
    assert any(
        'mace.r_max is set by the LES model: use model.cutoff' in e
        for e in validate_config({'train_file': 'x', 'model': {'backbone': 'mace', 'mace': {'r_max': 4.0}}}, 'train')
    )
    assert any(
        'mace.correlation: expected' in e
        for e in validate_config(
            {'train_file': 'x', 'model': {'backbone': 'mace', 'mace': {'correlation': 'three'}}}, 'train'
        )
    )


def test_mace_run_train_spellings_map_to_mace_arguments():
    args, errors = mace_arguments(
        {
            'num_channels': 16,
            'max_L': 2,
            'num_radial_basis': 6,
            'num_cutoff_basis': 5,
            'interaction': 'RealAgnosticInteractionBlock',
        },
        n_features=64,
    )
    assert errors == []
    assert args['hidden_irreps'] == '16x0e + 16x1o + 16x2e'
    assert args['num_bessel'] == 6
    assert args['num_polynomial_cutoff'] == 5
    assert args['interaction_cls'] == 'RealAgnosticInteractionBlock'
    assert args['max_ell'] == 2  # this host's default (kept so saved models rebuild unchanged)
    _, errors = mace_arguments({'num_channels': 16}, n_features=32)
    assert errors == [
        'model.n_features is 32 but the MACE hidden irreps have 16 scalar channels; set one of them only '
        '(mace.num_channels, or n_features)'
    ]
    _, errors = mace_arguments({'num_bessel': 6, 'num_radial_basis': 6}, n_features=64)
    assert errors == ['mace.num_radial_basis and its other spelling are both given']


@needs_mace
def test_mace_host_is_built_from_the_mapped_options_without_warnings(capsys):
    from les_model.nn.model import LesModel

    with warnings.catch_warnings():
        warnings.simplefilter('error')  # any warning (TorchScript, tensor copy) fails the test
        model = LesModel(
            ModelConfig(
                backbone='mace',
                cutoff=3.5,
                mace={**SMALL_MACE, 'num_radial_basis': 5, 'max_L': 2, 'num_interactions': 2},
            ),
            [11, 17],
        )
    assert capsys.readouterr().out == ''
    mace = model.host.mace
    assert str(mace.interactions[0].hidden_irreps) == '8x0e+8x1o+8x2e'
    assert mace.radial_embedding.out_dim == 5
    assert len(mace.interactions) == 2
    assert model.host.n_features == 8


@needs_mace
def test_mace_trains_from_les_train_with_the_neighbour_count_of_the_data(tmp_path, monkeypatch, capsys):
    from les_model.train.initialise import mean_neighbours

    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {'backbone': 'mace', 'cutoff': 3.5, 'mace': SMALL_MACE})
    assert train.main(['train.yaml', '--dtype', 'float64']) == ExitCode.SUCCESS
    out = capsys.readouterr().out
    assert 'TorchScript' not in out
    assert 'cuequivariance' not in out
    model = load_model(tmp_path / 'model.pt')
    data = StructureDataset.from_file(tmp_path / 'data.extxyz')
    train_set, _ = data.split(0.25, 0)
    expected = mean_neighbours(train_set, 3.5)
    assert expected != pytest.approx(16.0)
    assert model.config.mace['avg_num_neighbors'] == pytest.approx(expected)
    assert model.host.mace.interactions[0].avg_num_neighbors == pytest.approx(expected)
    assert f'{expected:.3g} neighbours/atom within 3.5 Å' in out
    config = TrainConfig.from_dict({'train_file': 'x', 'model': model.config.to_dict()})  # still a valid config
    assert config.model.mace['avg_num_neighbors'] == pytest.approx(expected)


@needs_mace
def test_the_example_mace_config_is_valid_and_builds():
    from pathlib import Path

    from les_model.nn.model import LesModel

    path = Path(__file__).resolve().parents[2] / 'examples' / 'configs' / 'train_mace.yaml'
    mapping = yaml.safe_load(path.read_text())
    assert validate_config(mapping, 'train') == []
    config = TrainConfig.from_dict(mapping)
    model = LesModel(config.model, [1, 8])
    assert model.host.n_features == 32
    assert str(model.host.mace.interactions[0].hidden_irreps) == '32x0e+32x1o'


@needs_mace
def test_model_files_with_the_formerly_ignored_mpnn_settings_still_load(tmp_path):
    import torch

    from les_model.io import model_to_dict
    from les_model.nn.model import LesModel

    model = LesModel(ModelConfig(backbone='mace', cutoff=3.5, n_features=8, mace=SMALL_MACE), [11, 17])
    payload = model_to_dict(model)
    payload['model_config'].update(n_radial=4, readout_hidden=8, n_interactions=1)  # as older versions wrote them
    torch.save(payload, tmp_path / 'old.pt')
    loaded = load_model(tmp_path / 'old.pt')
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
