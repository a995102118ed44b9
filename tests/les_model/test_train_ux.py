"""What a user of ``les-train`` sees: per-epoch lines, train.log, stops by walltime / SIGTERM / SIGKILL, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import torch
import yaml

from les_model.cli import train
from les_model.cli.exit_codes import ExitCode
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.io import load_model
from les_model.testing.models import TINY_MODEL

REPO = Path(__file__).resolve().parents[2]
EPOCH_LINE = re.compile(
    r'^epoch +(\d+)/(\d+)  lr \S+  train E \S+ meV/atom F \S+ meV/Å  valid E \S+ meV/atom F \S+ meV/Å  \d+\.\d s( \*)?$'
)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp('ux') / 'data.extxyz'
    ase.io.write(path, label_point_charges(random_ionic_structures(6, 8, seed=3), {11: 1.0, 17: -1.0}))
    return path


def _config(directory: Path, data: Path, **options) -> Path:
    config = {
        'train_file': str(data),
        'valid_fraction': 0.34,
        'epochs': 3,
        'batch_size': 2,
        'progress': False,
        'dtype': 'float64',
        'device': 'cpu',
        'model': TINY_MODEL,
        **options,
    }
    path = directory / 'train.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def _popen(directory: Path) -> subprocess.Popen:
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(REPO), 'PYTHONUNBUFFERED': '1'}
    return subprocess.Popen(
        [sys.executable, '-m', 'les_model.cli.train', 'train.yaml'],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_epoch(process: subprocess.Popen, epoch: int) -> list[str]:
    """Read stdout until the line of ``epoch``; return the lines read."""
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip('\n'))
        match = EPOCH_LINE.match(lines[-1])
        if match and int(match.group(1)) == epoch:
            return lines
    raise AssertionError(f'no epoch {epoch} line; stdout {lines}, stderr {process.stderr.read()}')


def test_one_line_per_epoch_on_stdout_and_in_train_log(tmp_path, data, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, data)
    assert train.main(['train.yaml']) == ExitCode.SUCCESS
    out = capsys.readouterr().out.splitlines()
    epochs = [line for line in out if EPOCH_LINE.match(line)]
    assert [int(EPOCH_LINE.match(line).group(1)) for line in epochs] == [1, 2, 3]
    assert epochs[0].endswith(' *')  # the first epoch is always a new best
    log = (tmp_path / 'train.log').read_text().splitlines()
    assert [line for line in log if EPOCH_LINE.match(line)] == epochs
    # the label summary and the E0 fit come before the first epoch (every frame is Na4Cl4: a degenerate fit)
    first = out.index(epochs[0])
    assert any(
        line.startswith('training set: 4 frames; labels in the loss: energy 4/4, forces 4/4') for line in out[:first]
    )
    e0_lines = [line for line in out[:first] if line.startswith('warning: reference energies: ')]
    assert len(e0_lines) == 1
    assert "do not determine E0 of ['Na', 'Cl'] separately" in e0_lines[0]
    assert out[-2].startswith('final training errors (RMSE, best model): E ')
    assert out[-3].startswith('final validation errors (RMSE, best model): E ')
    assert (tmp_path / 'learning_curve.png').stat().st_size > 1000
    assert not (tmp_path / 'model.partial.pt').exists()  # removed once model.pt is written


def test_resume_of_a_finished_run_is_a_no_op(tmp_path, data, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, data, epochs=2)
    assert train.main(['train.yaml']) == ExitCode.SUCCESS
    before = (tmp_path / 'model.pt').read_bytes(), (tmp_path / 'metrics.json').read_text()
    capsys.readouterr()
    assert train.main(['train.yaml', '--resume']) == ExitCode.SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('nothing to do: this run already finished (2 epochs, 1 model(s): model.pt)')
    assert not any(EPOCH_LINE.match(line) for line in out)
    assert out[-1] == 'LES-TRAIN FINISHED status=completed'
    assert ((tmp_path / 'model.pt').read_bytes(), (tmp_path / 'metrics.json').read_text()) == before


def test_walltime_stop_writes_the_best_model_so_far_and_says_how_to_resume(tmp_path, data, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, data, epochs=1)
    assert train.main(['train.yaml']) == ExitCode.SUCCESS
    # more epochs and a walltime shorter than one step: stops at the first step of epoch 2
    _config(tmp_path, data, epochs=3, max_walltime=1.0)
    capsys.readouterr()
    assert train.main(['train.yaml', '--resume']) == ExitCode.OUT_OF_WALLTIME
    captured = capsys.readouterr()
    assert (
        'stopped: walltime reached after 1 of 3 epochs (step 3); checkpoint.pt written; best model so far (epoch 1) in '
        in (captured.out)
    )
    assert 'Continue with `les-train <config> --resume`' in captured.out
    assert 'continue with `les-train train.yaml --resume`' in captured.err
    partial = load_model(tmp_path / 'model.partial.pt')
    assert partial.metadata['partial'] is True
    assert partial.metadata['best_epoch'] == 1
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['status'] == 'walltime'
    log = (tmp_path / 'train.log').read_text()
    assert re.search(r'^epoch 1/1 ', log, re.MULTILINE)  # a resumed run continues the log of the first
    assert 'resuming member 0 at epoch 1, step 2' in log
    assert 'stopped: walltime reached' in log
    # a fresh run (no --resume) starts a new log
    _config(tmp_path, data, epochs=1)
    assert train.main(['train.yaml']) == ExitCode.SUCCESS
    assert 'resuming' not in (tmp_path / 'train.log').read_text()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_a_signal_after_the_first_epoch_stops_with_a_model_and_a_resume_hint(tmp_path, data, signum):
    _config(tmp_path, data, epochs=500)
    process = _popen(tmp_path)
    try:
        _wait_for_epoch(process, 1)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    name = signal.Signals(signum).name
    assert process.returncode == ExitCode.OUT_OF_WALLTIME, err
    assert re.search(
        rf'stopped: {name} received after \d+ of 500 epochs \(step \d+\); checkpoint.pt written; best', out
    )
    assert f'les-train: ERROR OUT_OF_WALLTIME: {name} received' in err
    assert '--resume' in err
    model = load_model(tmp_path / 'model.partial.pt')
    assert model.metadata['best_epoch'] >= 1
    assert json.loads((tmp_path / 'metrics.json').read_text())['status'] == 'interrupted'
    state = torch.load(tmp_path / 'checkpoint.pt', weights_only=False)
    assert state['trainer']['epoch'] >= 1


def test_a_killed_run_keeps_the_model_of_its_last_checkpoint(tmp_path, data):
    _config(tmp_path, data, epochs=500)
    process = _popen(tmp_path)
    try:
        _wait_for_epoch(process, 2)
        process.kill()  # SIGKILL: nothing runs after this
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    state = torch.load(tmp_path / 'checkpoint.pt', weights_only=False)['trainer']
    model = load_model(tmp_path / 'model.partial.pt')
    assert model.metadata['best_epoch'] == state['best_epoch'] >= 1
    for key, value in state['best_state'].items():
        assert torch.equal(model.state_dict()[key], value), key
