"""The les-train / les-md / les-eval programs: files written, exit codes, one-line error messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml

from les_model.cli import evaluate, md, train
from les_model.cli.exit_codes import ExitCode
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.testing.models import TINY_MODEL


def _write(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping))
    return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A directory with data, a 2-member committee trained by les-train (run as a real subprocess) and configs."""
    workdir = tmp_path_factory.mktemp('cli')
    frames = label_point_charges(random_ionic_structures(6, 8, seed=4), {11: 1.0, 17: -1.0})
    ase.io.write(workdir / 'data.extxyz', frames)
    start = frames[0].copy()
    start.calc = None
    ase.io.write(workdir / 'start.extxyz', start)
    _write(
        workdir / 'train.yaml',
        {
            'train_file': 'data.extxyz',
            'epochs': 2,
            'batch_size': 2,
            'committee_size': 2,
            'progress': False,
            'model': TINY_MODEL,
        },
    )
    exe = shutil.which('les-train', path=str(Path(sys.executable).parent)) or shutil.which('les-train')
    command = [exe] if exe else [sys.executable, '-m', 'les_model.cli.train']
    result = subprocess.run(
        [*command, 'train.yaml', '--device', 'cpu', '--dtype', 'float64'],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == 'LES-TRAIN FINISHED status=completed'
    return workdir


def test_train_writes_the_file_contract(trained):
    for name in ('model_0.pt', 'model_1.pt', 'metrics.json', 'checkpoint.pt', 'learning_curve.png'):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / 'metrics.json').read_text())
    assert metrics['status'] == 'completed'
    assert len(metrics['members']) == 2
    assert len(metrics['members'][0]['epochs']) == 2


def test_train_resume_continues(trained, tmp_path, monkeypatch):
    for name in ('data.extxyz', 'checkpoint.pt', 'model_0.pt', 'model_1.pt'):
        shutil.copy(trained / name, tmp_path / name)
    config = yaml.safe_load((trained / 'train.yaml').read_text())
    config['epochs'] = 3
    _write(tmp_path / 'train.yaml', config)
    monkeypatch.chdir(tmp_path)
    assert train.main(['train.yaml', '--resume', '--dtype', 'float64']) == ExitCode.SUCCESS
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    # the checkpoint belonged to member 1: member 0 is kept, member 1 continues from epoch 2 to 3
    assert [len(m['epochs']) for m in metrics['members']] == [2, 3]


def test_invalid_config_exit_code_and_one_line_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / 'train.yaml', {'train_file': 'data.extxyz', 'epochz': 3})
    assert train.main(['train.yaml']) == ExitCode.INVALID_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith('les-train: ERROR INVALID_CONFIG:')
    assert "'epochz'" in err[0]
    assert list(tmp_path.iterdir()) == [tmp_path / 'train.yaml']  # nothing computed
    _write(tmp_path / 'md.yaml', {'models': ['m.pt'], 'structure': 's.xyz', 'ensemble': 'npt', 'steps': -5})
    assert md.main(['md.yaml']) == ExitCode.INVALID_CONFIG
    (tmp_path / 'eval.yaml').write_text('models: [a.pt\n')
    assert evaluate.main(['eval.yaml']) == ExitCode.INVALID_CONFIG
    assert train.main(['missing.yaml']) == ExitCode.INPUT_FILE_ERROR
    _write(tmp_path / 'ok.yaml', {'train_file': 'missing.extxyz'})
    assert train.main(['ok.yaml']) == ExitCode.INPUT_FILE_ERROR


def test_nan_guard_exit_code(trained, tmp_path, monkeypatch, capsys):
    frames = ase.io.read(trained / 'data.extxyz', ':')
    frames[1].calc.results['energy'] = float('nan')
    ase.io.write(tmp_path / 'data.extxyz', frames)
    _write(
        tmp_path / 'train.yaml',
        {'train_file': 'data.extxyz', 'valid_fraction': 0.0, 'batch_size': 6, 'progress': False, 'model': TINY_MODEL},
    )
    monkeypatch.chdir(tmp_path)
    assert train.main(['train.yaml']) == ExitCode.NAN_LOSS
    assert 'ERROR NAN_LOSS' in capsys.readouterr().err


def test_diverging_weights_are_a_nan_loss(trained, tmp_path, monkeypatch, capsys):
    """Weights blown up by a huge learning rate give non-finite charges: still NAN_LOSS, not an input error."""
    ase.io.write(tmp_path / 'data.extxyz', ase.io.read(trained / 'data.extxyz', ':'))
    config = {'train_file': 'data.extxyz', 'valid_fraction': 0.0, 'batch_size': 2, 'progress': False}
    _write(tmp_path / 'train.yaml', {**config, 'lr': 1e30, 'epochs': 3, 'model': TINY_MODEL})
    monkeypatch.chdir(tmp_path)
    assert train.main(['train.yaml']) == ExitCode.NAN_LOSS
    assert 'ERROR NAN_LOSS' in capsys.readouterr().err


def _md_config(trained, **options):
    config = {
        'models': [str(trained / 'model_0.pt'), str(trained / 'model_1.pt')],
        'structure': str(trained / 'start.extxyz'),
        'steps': 6,
        'write_every': 2,
        'timestep': 1.0,
        'temperature': 300.0,
    }
    config.update(options)
    return config


@pytest.mark.parametrize('ensemble', ['nvt', 'nve', 'npt'])
def test_md_runs_and_writes_trajectory(trained, tmp_path, monkeypatch, ensemble):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / 'md.yaml', _md_config(trained, ensemble=ensemble))
    assert md.main(['md.yaml']) == ExitCode.SUCCESS
    frames = ase.io.read(tmp_path / 'md.extxyz', ':')
    assert [f.info['les_step'] for f in frames] == [0, 2, 4, 6]
    assert all(f.info['les_max_force_std'] > 0 for f in frames)
    assert frames[0].arrays['les_forces'].shape == (8, 3)
    summary = json.loads((tmp_path / 'md_summary.json').read_text())
    assert summary['exit_code'] == 0
    assert summary['steps_completed'] == 6
    assert summary['committee_size'] == 2


def test_md_frames_carry_total_charge_and_multiplicity(trained, tmp_path, monkeypatch):
    """The charge the model ran at and the spin multiplicity are on every frame and in the summary."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / 'md.yaml', _md_config(trained, total_charge=-1.0, multiplicity=2, steps=2))
    assert md.main(['md.yaml']) == ExitCode.SUCCESS
    frames = ase.io.read(tmp_path / 'md.extxyz', ':')
    assert [(f.info['les_total_charge'], f.info['les_spin_multiplicity']) for f in frames] == [(-1.0, 2)] * 2
    summary = json.loads((tmp_path / 'md_summary.json').read_text())
    assert (summary['total_charge'], summary['multiplicity']) == (-1.0, 2)
    _write(tmp_path / 'md.yaml', _md_config(trained, multiplicity=0))
    assert md.main(['md.yaml']) == ExitCode.INVALID_CONFIG


def test_md_scripted_runs_the_same_trajectory(trained, tmp_path, monkeypatch):
    """``scripted: true`` (TorchScript energy path) gives the eager run's trajectory and committee deviations."""
    runs = {}
    for scripted in (False, True):
        workdir = tmp_path / str(scripted)
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        _write(workdir / 'md.yaml', _md_config(trained, ensemble='nvt', scripted=scripted))
        assert md.main(['md.yaml']) == ExitCode.SUCCESS
        runs[scripted] = ase.io.read(workdir / 'md.extxyz', ':')
    assert len(runs[True]) == len(runs[False]) == 4
    for eager, scripted in zip(runs[False], runs[True], strict=True):
        np.testing.assert_allclose(scripted.positions, eager.positions, atol=1e-8, rtol=0)
        for key in ('les_energy', 'les_max_force_std'):
            assert scripted.info[key] == pytest.approx(eager.info[key], abs=1e-8)


@pytest.mark.parametrize(
    ('options', 'code'),
    [
        ({'max_force_std': 1e-6}, ExitCode.MD_UNCERTAIN),
        ({'min_distance': 2.5}, ExitCode.MD_ATOMS_TOO_CLOSE),
        ({'max_energy_change': 1e-9, 'temperature': 3000.0}, ExitCode.MD_ENERGY_EXPLODED),
    ],
)
def test_md_stops_with_distinct_exit_codes(trained, tmp_path, monkeypatch, capsys, options, code):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / 'md.yaml', _md_config(trained, **options))
    assert md.main(['md.yaml']) == code
    assert f'ERROR {code.name}' in capsys.readouterr().err
    summary = json.loads((tmp_path / 'md_summary.json').read_text())
    assert summary['exit_code'] == code
    assert summary['steps_completed'] < 6
    frames = ase.io.read(tmp_path / 'md.extxyz', ':')
    assert frames[-1].info['les_step'] == summary['steps_completed']


def test_md_zero_switches_every_stopping_rule_off(trained, tmp_path, monkeypatch):
    """0 means off for all three bounds: a hot run that would trip any of them at step 1 runs to the end."""
    monkeypatch.chdir(tmp_path)
    options = {'max_energy_change': 0.0, 'min_distance': 0.0, 'max_force_std': 0.0, 'temperature': 3000.0}
    _write(tmp_path / 'md.yaml', _md_config(trained, **options))
    assert md.main(['md.yaml']) == ExitCode.SUCCESS
    summary = json.loads((tmp_path / 'md_summary.json').read_text())
    assert summary['steps_completed'] == 6
    energies = [frame['energy'] for frame in summary['frames']]
    assert max(energies) - min(energies) > 0  # the energy did move: with a tiny bound the run would have stopped


def test_md_refuses_unphysical_timestep_before_running(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / 'md.yaml', _md_config(trained, timestep=50.0))
    assert md.main(['md.yaml']) == ExitCode.INVALID_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith('les-md: ERROR INVALID_CONFIG: ')
    assert 'timestep must be <= 5.0 fs' in err[0]
    assert 'got 50.0 fs' in err[0]
    assert list(tmp_path.iterdir()) == [tmp_path / 'md.yaml']  # nothing computed


def test_eval_writes_predictions_and_metrics(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(
        tmp_path / 'eval.yaml',
        {
            'models': [str(trained / 'model_0.pt'), str(trained / 'model_1.pt')],
            'data_file': str(trained / 'data.extxyz'),
            'compute_bec': True,
            'batch_size': 4,
        },
    )
    assert evaluate.main(['eval.yaml', '--device', 'cpu']) == ExitCode.SUCCESS
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['n_structures'] == 6
    assert len(metrics['frames']) == 6
    assert {'energy_per_atom_mae', 'forces_rmse', 'stress_mae'} <= set(metrics['errors'])
    assert metrics['uncertainty']['max_force_std']['max'] > 0
    frames = ase.io.read(tmp_path / 'predictions.extxyz', ':')
    assert len(frames) == 6
    assert frames[5].arrays['les_forces'].shape == (8, 3)
    assert frames[5].arrays['les_bec'].shape == (8, 9)
    assert 'les_max_force_std' in frames[5].info
    reference = ase.io.read(trained / 'data.extxyz', 5)
    assert frames[5].get_potential_energy() == pytest.approx(reference.get_potential_energy())  # labels kept

    # metrics.json: one unit system (milli-units of eV and e), named for every key; the extxyz stays in eV and e.
    units = metrics['units']
    assert units['forces'] == 'meV/Å'
    assert units['energy_per_atom'] == units['energy_error_per_atom'] == units['energy_std_per_atom'] == 'meV/atom'
    assert units['max_force_std'] == 'meV/Å'
    assert units['max_charge_std'] == 'me'
    frame = metrics['frames'][5]
    assert frame['max_force_std'] == pytest.approx(1000 * frames[5].info['les_max_force_std'])
    assert frame['energy'] == pytest.approx(1000 * frames[5].info['les_energy'])
    error = (frames[5].info['les_energy'] - reference.get_potential_energy()) / len(reference)
    assert frame['energy_error_per_atom'] == pytest.approx(1000 * error)
    errors = [f['energy_error_per_atom'] for f in metrics['frames']]
    assert metrics['errors']['energy_per_atom_rmse'] == pytest.approx(np.sqrt(np.mean(np.square(errors))))
    assert metrics['uncertainty']['max_force_std']['max'] == pytest.approx(
        max(f['max_force_std'] for f in metrics['frames'])
    )
    out = capsys.readouterr().out
    rmse = metrics['errors']['forces_rmse']
    assert f'forces_rmse={rmse:.4g} meV/Å' in out
    assert f'energy_per_atom_rmse={metrics["errors"]["energy_per_atom_rmse"]:.4g} meV/atom' in out

    # The committee's force deviation calibrated against the true errors (metrics and the PNG the user looks at).
    calibration = metrics['calibration']
    assert calibration['n_atoms'] == 48
    # forces_rmse is per component; the calibration compares error-vector lengths with the committee deviation.
    assert calibration['force_error_rms_mev_per_ang'] == pytest.approx(np.sqrt(3) * rmse)
    std = np.concatenate([f.arrays['les_force_std'] for f in frames])
    assert calibration['scale'] == pytest.approx(np.sqrt(3) * rmse / (1000 * np.sqrt(np.mean(std**2))))
    assert set(calibration['scale_per_element']) == {'11', '17'}
    assert (tmp_path / 'calibration.png').stat().st_size > 1000
    assert f'force uncertainty calibration: scale {calibration["scale"]:.3g}' in out


def test_incompatible_model_exit_code(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'bad.pt').write_text('junk')
    _write(tmp_path / 'eval.yaml', {'models': ['bad.pt'], 'data_file': str(trained / 'data.extxyz')})
    assert evaluate.main(['eval.yaml']) == ExitCode.INCOMPATIBLE_MODEL


def _flat_keys(cls, prefix=''):
    """``(dotted key, field)`` of every key of a configuration section, nested sections flattened."""
    from les_model.config_base import Section

    for name, field in cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            yield from _flat_keys(field.annotation, f'{prefix}{name}.')
        else:
            yield f'{prefix}{name}', field


@pytest.mark.parametrize(
    ('program', 'kind', 'expected'),
    [
        (train, 'train', ['  model.cutoff: float, default 5.0  [Å]', '  max_walltime: float, default 0.0  [s, 0 = ']),
        (
            md,
            'md',
            ['  timestep: float, default 0.5  [fs, at most 5', '  max_energy_change: float, default 5.0  [eV/atom'],
        ),
        (evaluate, 'eval', ['  models: list of str, required', "  keys.forces: str or null, default 'forces'"]),
    ],
)
def test_help_lists_every_config_key_with_units(program, kind, expected, capsys):
    """``--help`` is generated from les_model.config: every key, its type, default and unit, and the example file."""
    from les_model.config import EvalConfig, MDConfig, TrainConfig

    with pytest.raises(SystemExit) as exit_info:
        program.main(['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    cls = {'train': TrainConfig, 'md': MDConfig, 'eval': EvalConfig}[kind]
    lines = text.splitlines()
    for key, _ in _flat_keys(cls):
        assert any(line.startswith(f'  {key}: ') for line in lines), key
    for line in expected:
        assert any(candidate.startswith(line) for candidate in lines), line
    example = f'examples/configs/{kind}.yaml'
    assert example in ' '.join(text.split())
    assert (Path(__file__).resolve().parents[2] / example).is_file()


def test_every_numeric_config_key_has_a_unit():
    """Every key has a description (it feeds --help and the AiiDA port help); a numeric one opens with its unit."""
    import re
    from typing import Annotated, get_args, get_origin

    from les_model.config import EvalConfig, MDConfig, ModelConfig, TrainConfig

    for cls in (ModelConfig, TrainConfig, MDConfig, EvalConfig):
        for key, field in _flat_keys(cls):
            assert field.description, f'{cls.__name__}.{key}'
            if get_origin(field.annotation) is tuple:
                continue  # lists of file names or atomic numbers
            types = {field.annotation, *get_args(field.annotation)}  # float, or float | None
            types |= {get_args(t)[0] for t in types if get_origin(t) is Annotated}
            if types & {float, int}:
                assert re.match(r'\[[^]]+\] ', field.description), f'{cls.__name__}.{key}: {field.description}'


def test_ir_help_names_units(capsys):
    from les_model.cli import ir

    with pytest.raises(SystemExit):
        ir.main(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'time between frames in fs' in text
    assert 'wavenumber [cm^-1]' in text


def test_md_npt_mtk_samples_with_a_conserved_quantity(trained, tmp_path, monkeypatch):
    """The default NPT (MTK barostat): the cell breathes, and the extended-system energy is conserved.

    Kinetic + potential energy alone changes by the thermostat's and barostat's work; the MTK conserved energy
    adds it back, so its drift over 200 steps of 1 fs is a small fraction of the kinetic energy's fluctuation.
    """
    monkeypatch.chdir(tmp_path)
    config = _md_config(trained, ensemble='npt', steps=200, write_every=10, timestep=1.0, taut=50.0, taup=200.0)
    config.update(max_energy_change=0.0, min_distance=0.0)
    _write(tmp_path / 'md.yaml', config)
    assert md.main(['md.yaml']) == ExitCode.SUCCESS
    frames = ase.io.read(tmp_path / 'md.extxyz', ':')
    assert len(frames) == 21
    volumes = np.array([f.get_volume() for f in frames])
    assert np.ptp(volumes) > 1e-4 * volumes[0]  # the barostat moves the cell
    conserved = np.array([f.info['les_conserved_energy'] for f in frames])
    potential = np.array([f.info['les_energy'] for f in frames])
    kinetic = np.array([f.get_kinetic_energy() for f in frames])
    assert np.ptp(conserved) < 1e-2 * np.ptp(kinetic + potential)  # measured: 1.3e-6 eV against 0.31 eV
    assert np.ptp(kinetic + potential) > 0  # the thermostat and barostat do work: there is something to conserve
