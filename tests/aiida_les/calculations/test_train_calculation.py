"""Tests for :class:`aiida_les.calculations.train.LesTrainCalculation`: input files, validation, options."""

import pathlib

import pytest
import yaml
from aiida import orm

from aiida_les.utils.resources import gpu_options

ENTRY_POINT = 'les.train'
CONFIG = {'epochs': 2, 'batch_size': 2, 'model': {'cutoff': 4.0, 'n_features': 8}}


@pytest.fixture
def inputs(fixture_code, generate_dataset):
    return {
        'code': fixture_code(ENTRY_POINT),
        'dataset': generate_dataset(),
        'config': orm.Dict(CONFIG),
        'metadata': {'options': {'max_wallclock_seconds': 1800}},
    }


def test_default(generate_calc_job, inputs, file_regression):
    folder, calc_info = generate_calc_job(ENTRY_POINT, inputs)
    codeinfo = calc_info.codes_info[0]
    assert codeinfo.cmdline_params == ['config.yaml']
    assert codeinfo.stdout_name == 'les.out'
    assert codeinfo.stderr_name == 'les.err'
    assert [entry[2] for entry in calc_info.local_copy_list] == ['train.extxyz']
    assert calc_info.remote_copy_list == []
    assert 'model.pt' in calc_info.retrieve_list
    assert 'metrics.json' in calc_info.retrieve_list
    assert calc_info.retrieve_temporary_list == ['checkpoint.pt']
    content = folder.get_content_list()
    assert sorted(content) == ['config.yaml']
    file_regression.check(pathlib.Path(folder.get_abs_path('config.yaml')).read_text(), extension='.yaml')


def test_walltime_margin(generate_calc_job, inputs):
    """The program gets max(0.9 T, T - 300 s) of the scheduler walltime T, unless the config sets it."""
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    config = yaml.safe_load(pathlib.Path(folder.get_abs_path('config.yaml')).read_text())
    assert config['max_walltime'] == pytest.approx(1620.0)
    inputs['config'] = orm.Dict({**CONFIG, 'max_walltime': 100.0})
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    config = yaml.safe_load(pathlib.Path(folder.get_abs_path('config.yaml')).read_text())
    assert config['max_walltime'] == 100.0


def test_validation_and_parent_model(generate_calc_job, inputs, generate_dataset, generate_model):
    inputs['validation_dataset'] = generate_dataset(n_frames=2, seed=10)
    inputs['parent_model'] = generate_model()
    folder, calc_info = generate_calc_job(ENTRY_POINT, inputs)
    assert sorted(entry[2] for entry in calc_info.local_copy_list) == [
        'init_model.pt',
        'train.extxyz',
        'valid.extxyz',
    ]
    config = yaml.safe_load(pathlib.Path(folder.get_abs_path('config.yaml')).read_text())
    assert config['init_model'] == 'init_model.pt'
    assert config['valid_file'] == 'valid.extxyz'


def test_restart_from_checkpoint(generate_calc_job, inputs, aiida_localhost):
    inputs['parent_folder'] = orm.RemoteData(computer=aiida_localhost, remote_path='/tmp/previous-run')
    _, calc_info = generate_calc_job(ENTRY_POINT, inputs)
    assert calc_info.remote_copy_list == [(aiida_localhost.uuid, '/tmp/previous-run/checkpoint.pt', 'checkpoint.pt')]
    assert calc_info.codes_info[0].cmdline_params == ['config.yaml', '--resume']


def test_gpu_options(generate_calc_job, inputs):
    inputs['metadata']['options'] = gpu_options(num_gpus=1, max_wallclock_seconds=3600)
    process = generate_calc_job(ENTRY_POINT, inputs, return_process=True)
    assert process.node.get_option('custom_scheduler_commands') == '#SBATCH --gres=gpu:1'
    assert process.node.get_option('device') == 'cuda'
    folder, _ = generate_calc_job(ENTRY_POINT, inputs)
    assert yaml.safe_load(pathlib.Path(folder.get_abs_path('config.yaml')).read_text())['device'] == 'cuda'


@pytest.mark.parametrize(
    ('config', 'match'),
    [
        ({'epochs': 0}, r'epochs must be > 0, got 0'),
        ({'learning_rate': 1e-3}, r"unknown keys \['learning_rate'\]"),
        ({'model': {'cutoff': -1.0}}, r'cutoff must be > 0'),
        ({'train_file': 'mine.extxyz'}, r'the CalcJob sets `train_file` \(from input `dataset`\)'),
    ],
)
def test_invalid_config_fails_before_submission(generate_calc_job, inputs, config, match):
    inputs['config'] = orm.Dict(config)
    with pytest.raises(ValueError, match=match):
        generate_calc_job(ENTRY_POINT, inputs)


def test_invalid_device(generate_calc_job, inputs):
    inputs['metadata']['options']['device'] = 'tpu'
    with pytest.raises(ValueError, match=r"device must be one of \['auto', 'cpu', 'cuda'\], got 'tpu'"):
        generate_calc_job(ENTRY_POINT, inputs)


def test_warm_start_and_restart_exclusive(generate_calc_job, inputs, generate_model, aiida_localhost):
    inputs['parent_model'] = generate_model()
    inputs['parent_folder'] = orm.RemoteData(computer=aiida_localhost, remote_path='/tmp/previous-run')
    with pytest.raises(ValueError, match='either `parent_model`'):
        generate_calc_job(ENTRY_POINT, inputs)


def _dry_run_script(inputs, tmp_path, monkeypatch, resources) -> str:
    from aiida.engine import run_get_node
    from aiida.plugins import CalculationFactory

    monkeypatch.chdir(tmp_path)  # the dry run writes its folder in the current directory
    inputs['metadata'] = {
        'options': {'max_wallclock_seconds': 1800, 'resources': resources},
        'dry_run': True,
        'store_provenance': False,
    }
    _, node = run_get_node(CalculationFactory(ENTRY_POINT), **inputs)
    return pathlib.Path(node.dry_run_info['folder'], node.dry_run_info['script_filename']).read_text()


def test_two_processes_per_machine_run_under_torchrun(inputs, tmp_path, monkeypatch):
    """N MPI processes per machine in the resources -> the job script runs les-train under torchrun with N."""
    script = _dry_run_script(inputs, tmp_path, monkeypatch, {'num_machines': 1, 'num_mpiprocs_per_machine': 2})
    executable = inputs['code'].get_executable()
    run_lines = [line.split() for line in script.splitlines() if str(executable) in line]
    assert run_lines == [
        [
            str(executable.parent / 'torchrun'),
            *['--standalone', '--nnodes', '1', '--nproc_per_node', '2', '--no-python'],
            f"'{executable}'",
            *["'config.yaml'", '>', "'les.out'", '2>', "'les.err'"],
        ]
    ]
    one = _dry_run_script(inputs, tmp_path, monkeypatch, {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    assert 'torchrun' not in one


@pytest.mark.parametrize(
    ('resources', 'config', 'message'),
    [
        ({'num_machines': 2, 'num_mpiprocs_per_machine': 2}, CONFIG, 'runs on one machine'),
        ({'num_machines': 1, 'num_mpiprocs_per_machine': 4}, CONFIG, 'batch_size 2 .* not divisible by the 4'),
        ({'num_machines': 1, 'tot_num_mpiprocs': 3}, {**CONFIG, 'batch_size': 4}, 'not divisible by the 3'),
    ],
)
def test_data_parallel_resources_are_checked(generate_calc_job, inputs, resources, config, message):
    inputs['config'] = orm.Dict(config)
    inputs['metadata']['options']['resources'] = resources
    with pytest.raises(ValueError, match=message):
        generate_calc_job(ENTRY_POINT, inputs)
