"""``aiida-les`` never creates ``~/.aiida``: only the directory ``AIIDA_PATH`` names, or an existing ``~/.aiida``.

Each case runs the program in a subprocess (``python -m aiida_les.cli``, what the ``aiida-les`` entry point calls)
with ``HOME`` set to an empty temporary directory.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _aiida_les(home, *args, aiida_path=None, installed=False):
    """Run ``python -m aiida_les.cli`` (or, with ``installed``, the ``aiida-les`` script of this environment)."""
    env = {key: value for key, value in os.environ.items() if key != 'AIIDA_PATH'}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([str(ROOT), env.get('PYTHONPATH', '')]))
    if aiida_path is not None:
        env['AIIDA_PATH'] = str(aiida_path)
    command = (
        [str(pathlib.Path(sys.executable).parent / 'aiida-les')]
        if installed
        else [sys.executable, '-m', 'aiida_les.cli']
    )
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, check=False, cwd=home)


@pytest.mark.parametrize('args', [('--help',), ('setup', '--help'), ('campaign', 'show', '-h'), ()])
def test_help_creates_nothing(tmp_path, args):
    completed = _aiida_les(tmp_path, *args)
    # Without arguments click prints the help as a usage error (exit status 2).
    assert completed.returncode == (0 if args else 2), completed.stderr
    assert 'Usage: aiida-les' in completed.stdout + completed.stderr
    assert 'Creating AiiDA configuration folder' not in completed.stderr
    assert list(tmp_path.iterdir()) == [], 'aiida-les wrote into HOME'


@pytest.mark.parametrize('args', [('campaign', 'list'), ('setup', '--profile', 'p'), ('model', 'list')])
def test_commands_without_configuration_say_what_to_set(tmp_path, args):
    completed = _aiida_les(tmp_path, *args)
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert 'No AiiDA configuration: AIIDA_PATH is not set' in lines[0]
    assert 'export AIIDA_PATH=$PWD/.aiida' in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_aiida_path_is_used_and_home_untouched(tmp_path):
    home, project = tmp_path / 'home', tmp_path / 'project'
    home.mkdir()
    completed = _aiida_les(home, 'campaign', 'list', aiida_path=project)
    # A fresh configuration has no profile yet: AiiDA says so, in the directory AIIDA_PATH names.
    assert (project / '.aiida').is_dir()
    assert 'no default profile' in completed.stdout + completed.stderr
    assert list(home.iterdir()) == []


def test_existing_home_configuration_is_used(tmp_path):
    (tmp_path / '.aiida').mkdir()
    completed = _aiida_les(tmp_path, 'campaign', 'list')
    assert 'No AiiDA configuration' not in completed.stderr
    assert 'no default profile' in completed.stdout + completed.stderr


def test_installed_script_creates_nothing(tmp_path):
    """The ``aiida-les`` script installed in this environment (whatever entry point it was generated for)."""
    if not (pathlib.Path(sys.executable).parent / 'aiida-les').exists():
        pytest.skip('no aiida-les script next to this Python')
    completed = _aiida_les(tmp_path, 'setup', '--help', installed=True)
    assert completed.returncode == 0, completed.stderr
    assert 'Usage: aiida-les setup' in completed.stdout
    refused = _aiida_les(tmp_path, 'campaign', 'list', installed=True)
    assert refused.returncode == 1
    assert 'No AiiDA configuration' in refused.stderr
    assert list(tmp_path.iterdir()) == []
