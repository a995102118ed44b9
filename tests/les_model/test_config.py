"""Configuration dataclasses: YAML round trip, unknown keys, value checks, validate_config without side effects."""

from __future__ import annotations

import pydantic
import pytest

from les_model.config import (
    ConfigError,
    EvalConfig,
    MDConfig,
    ModelConfig,
    TrainConfig,
    load_config,
    validate_config,
)


def test_yaml_round_trip(tmp_path):
    config = TrainConfig.from_dict(
        {'train_file': 'data.extxyz', 'valid_file': None, 'model': {'species': [1, 8], 'long_range': False}}
    )
    path = tmp_path / 'train.yaml'
    config.to_yaml(path)
    again = TrainConfig.from_yaml(path)
    assert again == config
    assert again.model.species == (1, 8)
    assert isinstance(again.model, ModelConfig)


def test_frozen_and_copied_with_changes():
    config = ModelConfig()
    with pytest.raises(pydantic.ValidationError, match='frozen'):
        config.cutoff = 3.0
    copy = config.model_copy(update={'cutoff': 3.0})
    assert (copy.cutoff, config.cutoff) == (3.0, 5.0)
    assert ModelConfig.default('cutoff') == 5.0


def test_types_are_not_coerced():
    """A bool is no number, '3' no integer, 3.0 no integer; an integer is a float (stored as a float)."""
    errors = validate_config(
        {'train_file': 'x', 'lr': True, 'batch_size': '3', 'epochs': 3.0, 'model': {'species': [1, 'O'], 'dl': 'x'}},
        'train',
    )
    assert errors == [
        "TrainConfig.model.dl: expected a number, got 'x'",
        "TrainConfig.model.species[1]: expected an integer, got 'O'",
        'TrainConfig.epochs: expected an integer, got 3.0',
        "TrainConfig.batch_size: expected an integer, got '3'",
        'TrainConfig.lr: expected a number, got True',
    ]
    config = TrainConfig.from_dict({'train_file': 'x', 'lr': 1})
    assert config.lr == 1.0
    assert isinstance(config.lr, float)


def test_checks_across_keys_run_when_a_key_has_a_wrong_type():
    """Pydantic skips a section's own checks once a key fails; every problem is still reported at once."""
    errors = validate_config(
        {'train_file': 'x', 'energy_weight': 0, 'forces_weight': 0, 'epochs': 'many', 'model': 3}, 'train'
    )
    assert errors == [
        'TrainConfig.model: expected a mapping, got int',
        "TrainConfig.epochs: expected an integer, got 'many'",
        'TrainConfig: at least one loss weight must be > 0',
    ]
    # a nested section's own check and the outer section's check
    errors = validate_config({'energy_weight': 0, 'forces_weight': 0, 'model': {'species': [1, 1]}}, 'train')
    assert errors == [
        'TrainConfig.model: species must not repeat, got [1, 1]',
        'TrainConfig: train_file is required (path of an extxyz file)',
        'TrainConfig: at least one loss weight must be > 0',
    ]
    assert validate_config(['train_file'], 'train') == ['TrainConfig: expected a mapping, got list']


def test_unknown_keys_list_the_allowed_ones():
    errors = validate_config({'train_file': 'x', 'epoch': 3, 'model': {'cutof': 4.0}}, 'train')
    assert len(errors) == 2
    assert "unknown keys ['epoch']" in errors[0]
    assert "'epochs'" in errors[0]
    assert 'TrainConfig.model' in errors[1]
    assert "'cutoff'" in errors[1]


@pytest.mark.parametrize(
    ('kind', 'mapping', 'fragment'),
    [
        ('train', {'train_file': 'x', 'epochs': 0}, 'epochs must be > 0, got 0'),
        ('train', {'train_file': 'x', 'lr': 'fast'}, "expected a number, got 'fast'"),
        ('train', {'train_file': 'x', 'scheduler': 'step'}, "expected one of ['plateau', 'cosine', 'none']"),
        ('train', {'train_file': 'x', 'valid_fraction': 1.0}, 'valid_fraction must be in [0, 1)'),
        ('train', {'train_file': 'x', 'energy_weight': 0, 'forces_weight': 0}, 'at least one loss weight'),
        ('train', {}, 'train_file is required'),
        ('train', {'train_file': 'x', 'model': {'species': [1, 1]}}, 'species must not repeat'),
        ('train', {'train_file': 'x', 'model': {'sigma': -1}}, 'sigma must be > 0'),
        ('train', {'train_file': 'x', 'epochs': True}, 'expected an integer, got True'),
        ('md', {'models': ['m.pt'], 'structure': 's.xyz', 'ensemble': 'nph'}, "expected one of ['nvt', 'npt', 'nve']"),
        ('md', {'models': ['m.pt'], 'structure': 's.xyz', 'timestep': 0}, 'timestep must be > 0'),
        ('eval', {'models': [], 'data_file': 'd.xyz'}, 'models must list at least one model file'),
    ],
)
def test_invalid_values_are_named(kind, mapping, fragment):
    errors = validate_config(mapping, kind)
    assert any(fragment in e for e in errors), errors


def test_validate_config_accepts_valid_mappings():
    assert validate_config({'train_file': 'x'}, 'train') == []
    assert validate_config({'models': ['a.pt', 'b.pt'], 'structure': 's.xyz', 'total_charge': 1}, 'md') == []
    assert validate_config({'models': ['a.pt'], 'data_file': 'd.xyz'}, 'eval') == []
    assert validate_config({'cutoff': 4.5}, 'model') == []


def test_validate_config_does_not_touch_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert validate_config({'train_file': 'missing.extxyz', 'init_model': 'missing.pt'}, 'train') == []
    assert list(tmp_path.iterdir()) == []


def test_unknown_kind():
    with pytest.raises(ValueError, match='kind must be one of'):
        validate_config({}, 'dft')


def test_load_config_raises_config_error_with_all_problems(tmp_path):
    path = tmp_path / 'md.yaml'
    path.write_text('models: [a.pt]\nsteps: -1\nfoo: 2\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, 'md')
    assert len(info.value.errors) == 3  # unknown key, structure missing, steps <= 0
    config = load_config({'models': ['a.pt'], 'structure': 's.xyz'}, 'md')
    assert isinstance(config, MDConfig)
    assert config.models == ('a.pt',)
    assert isinstance(load_config({'models': ['a'], 'data_file': 'd'}, 'evaluate'), EvalConfig)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('- 1\n- 2\n')
    with pytest.raises(ConfigError, match='expected a YAML mapping'):
        TrainConfig.from_yaml(path)


def test_example_configs_are_valid():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / 'examples' / 'configs'
    for name, kind in (('train.yaml', 'train'), ('md.yaml', 'md'), ('eval.yaml', 'eval')):
        assert validate_config(yaml.safe_load((root / name).read_text()), kind) == [], name


def test_model_files_keep_the_config_format():
    """``to_dict`` writes what model files stored before the pydantic sections (les_model.io reads both ways)."""
    written_before = {
        'backbone': 'mpnn', 'cutoff': 5.0, 'n_features': 64, 'n_radial': 8, 'radial_basis': 'bessel',
        'cutoff_function': 'polynomial', 'n_interactions': 2, 'angular': True, 'readout_hidden': 32,
        'long_range': True, 'charge_model': 'latent', 'charge_hidden': 32, 'charge_distribution': 'learned',
        'sigma': 1.0, 'dl': 2.0, 'charge_embedding': True, 'spin_embedding': False, 'species': [], 'mace': {},
    }  # fmt: skip
    assert ModelConfig().to_dict() == written_before
    assert list(ModelConfig().to_dict()) == list(written_before)
    config = ModelConfig.from_dict({**written_before, 'species': [8, 1], 'cutoff': 4})
    assert config.species == (8, 1)
    assert config.to_dict()['cutoff'] == 4.0
    assert ModelConfig.from_dict(config.to_dict()) == config
