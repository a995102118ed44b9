"""Tests for :class:`aiida_les.calculations.md.LesMdCalculation`: input files and validation."""

import pathlib

import ase.io
import numpy as np
import pytest
import yaml
from aiida import orm

ENTRY_POINT = 'les.md'
CONFIG = {'steps': 100, 'timestep': 1.0, 'temperature': 600.0, 'max_force_std': 0.5}


@pytest.fixture
def inputs(fixture_code, generate_structure, generate_model):
    return {
        'code': fixture_code(ENTRY_POINT),
        'structure': generate_structure('NaCl'),
        'models': {'b': generate_model(b'model b'), 'a': generate_model(b'model a')},
        'config': orm.Dict(CONFIG),
        'metadata': {'options': {'max_wallclock_seconds': 1800}},
    }


def test_default(generate_calc_job, inputs, file_regression):
    folder, calc_info = generate_calc_job(ENTRY_POINT, inputs)
    assert calc_info.codes_info[0].cmdline_params == ['config.yaml']
    # models are copied in sorted label order: `a` first, it drives the dynamics
    assert [(entry[0], entry[2]) for entry in calc_info.local_copy_list] == [
        (inputs['models']['a'].uuid, 'model_a.pt'),
        (inputs['models']['b'].uuid, 'model_b.pt'),
    ]
    assert sorted(calc_info.retrieve_list) == ['les.err', 'les.out', 'md.extxyz', 'md_summary.json']
    assert sorted(folder.get_content_list()) == ['config.yaml', 'structure.extxyz']
    config_text = pathlib.Path(folder.get_abs_path('config.yaml')).read_text()
    file_regression.check(config_text, extension='.yaml')


def test_structure_file(generate_calc_job, inputs):
    """The structure is written as extxyz with cell [Å], positions [Å] and periodicity intact."""
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    atoms = ase.io.read(folder.get_abs_path('structure.extxyz'))
    reference = inputs['structure'].get_ase()
    assert atoms.get_chemical_symbols() == reference.get_chemical_symbols()
    np.testing.assert_allclose(atoms.positions, reference.positions, atol=1e-8)
    np.testing.assert_allclose(np.asarray(atoms.cell), np.asarray(reference.cell), atol=1e-8)
    assert atoms.pbc.tolist() == [True, True, True]


def test_models_required(generate_calc_job, inputs):
    inputs['models'] = {}
    with pytest.raises(ValueError, match='models: give at least one LesModelData'):
        generate_calc_job(ENTRY_POINT, inputs)


@pytest.mark.parametrize(
    ('config', 'match'),
    [
        ({'ensemble': 'npt', 'temperature': 0.0}, "temperature must be > 0 for ensemble 'npt'"),
        ({'ensemble': 'nph'}, r"expected one of \['nvt', 'npt', 'nve'\]"),
        ({'trajectory_file': 'x.extxyz'}, r'`trajectory_file` \(fixed name\)'),
    ],
)
def test_invalid_config(generate_calc_job, inputs, config, match):
    inputs['config'] = orm.Dict(config)
    with pytest.raises(ValueError, match=match):
        generate_calc_job(ENTRY_POINT, inputs)


def test_device_written(generate_calc_job, inputs):
    inputs['metadata']['options']['device'] = 'cuda'
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    config = yaml.safe_load(pathlib.Path(folder.get_abs_path('config.yaml')).read_text())
    assert config['device'] == 'cuda'
