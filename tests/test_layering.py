"""The layers import downwards only: les_model (pure torch + ase) <- aiida_les <- workchains.

Each package's modules are imported in a fresh interpreter, which must then hold no module of the layer above (for
les_model: nothing of aiida at all).
"""

import subprocess
import sys

import pytest

LAYERS = [('les_model', 'aiida'), ('aiida_les', 'workchains')]


@pytest.mark.parametrize(('package', 'above'), LAYERS)
def test_import_does_not_load_the_layer_above(package, above):
    code = (
        'import importlib, pkgutil, sys\n'
        f'import {package} as package\n'
        'for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):\n'
        '    if ".testing" not in info.name and not info.name.endswith(".__main__"):\n'
        '        importlib.import_module(info.name)\n'
        f'print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == {above!r})))\n'
    )
    completed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == '', f'{package} imported {above} modules: {completed.stdout.strip()}'
