"""aiida_les sits below workchains: importing any of its modules loads no workchains module."""

import subprocess
import sys


def test_aiida_les_does_not_import_workchains():
    code = (
        'import importlib, pkgutil, sys\n'
        'import aiida_les as package\n'
        'for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):\n'
        '    if not info.name.endswith(".__main__"):\n'
        '        importlib.import_module(info.name)\n'
        'print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "workchains")))\n'
    )
    completed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == '', f'aiida_les imported workchains modules: {completed.stdout.strip()}'
