"""les_model must stay pure torch + ase: importing it (and its CLIs) pulls in no aiida module."""

import subprocess
import sys

import pytest

MODULES = ['les_model']


@pytest.mark.parametrize('module', MODULES)
def test_import_does_not_load_aiida(module):
    code = (
        'import importlib, pkgutil, sys\n'
        f'import {module} as package\n'
        'for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):\n'
        '    if ".testing" not in info.name:\n'
        '        importlib.import_module(info.name)\n'
        'loaded = sorted(name for name in sys.modules if name == "aiida" or name.startswith("aiida."))\n'
        'print(",".join(loaded))\n'
    )
    completed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == '', f'les_model imported aiida modules: {completed.stdout.strip()}'
