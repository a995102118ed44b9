"""``aiida-les setup`` creates a project-local profile, computer and codes, and is idempotent."""

import os
import pathlib
import subprocess
import sys

BIN = pathlib.Path(sys.executable).parent


def _setup(aiida_path, *args):
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': f'{BIN}:{os.environ["PATH"]}'}
    completed = subprocess.run(
        [str(BIN / 'aiida-les'), 'setup', *args], capture_output=True, text=True, env=env, check=False
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout + completed.stderr


def test_setup_is_idempotent(tmp_path):
    first = _setup(tmp_path, '--profile', 'test-les')
    assert 'Creating profile `test-les`' in first
    assert 'Created code `les-train@localhost`' in first
    assert 'Created code `cp2k@localhost`' in first
    assert (tmp_path / '.aiida' / 'config.json').exists()

    second = _setup(tmp_path, '--profile', 'test-les')
    assert 'Creating profile' not in second
    assert 'Created code' not in second
    assert 'Code `les-train@localhost` exists' in second


def test_unknown_computer_is_a_clear_error(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    completed = subprocess.run(
        [str(BIN / 'aiida-les'), 'setup', '--profile', 'p', '--computer', 'nowhere'],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert completed.returncode != 0
    assert 'Computer `nowhere` does not exist' in completed.stdout + completed.stderr
