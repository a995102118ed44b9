"""``aiida-les setup --scheduler slurm`` registers a core.slurm computer and the codes on it, idempotently."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

BIN = pathlib.Path(sys.executable).parent


def _run(aiida_path, *args, script=None):
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': f'{BIN}:{os.environ["PATH"]}'}
    command = [str(BIN / 'aiida-les'), 'setup', *args] if script is None else [str(BIN / 'python'), '-c', script]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


_INSPECT = """
import json
from aiida import load_profile, orm
load_profile('test-slurm')
computer = orm.load_computer('slurm')
codes = orm.QueryBuilder().append(orm.Computer, filters={'label': 'slurm'}, tag='c').append(
    orm.InstalledCode, with_computer='c', project=['label']).all(flat=True)
print(json.dumps({'scheduler': computer.scheduler_type, 'transport': computer.transport_type,
                  'hostname': computer.hostname, 'codes': sorted(codes),
                  'plugin': orm.load_code('les-train@slurm').default_calc_job_plugin}))
"""


@pytest.mark.skipif(shutil.which('sbatch') is None, reason='needs the SLURM client (sbatch) on PATH')
def test_setup_slurm_computer_and_codes(tmp_path):
    first = _run(tmp_path, '--profile', 'test-slurm', '--scheduler', 'slurm')
    assert first.returncode == 0, first.stdout + first.stderr
    assert 'Created computer `slurm` (core.local, core.slurm' in first.stdout + first.stderr
    assert 'Created code `les-train@slurm`' in first.stdout + first.stderr

    inspected = _run(tmp_path, script=_INSPECT)
    assert inspected.returncode == 0, inspected.stderr
    record = json.loads(inspected.stdout.strip().splitlines()[-1])
    assert record['scheduler'] == 'core.slurm'
    assert record['transport'] == 'core.local'
    assert record['hostname'] == 'localhost'
    assert record['plugin'] == 'les.train'
    assert {'les-train', 'les-md', 'les-eval', 'cp2k', 'ase-label'} <= set(record['codes'])

    second = _run(tmp_path, '--profile', 'test-slurm', '--scheduler', 'slurm')
    assert second.returncode == 0, second.stdout + second.stderr
    assert 'Created' not in second.stdout + second.stderr

    # The same label with the other scheduler is refused with a message naming both.
    clash = _run(tmp_path, '--profile', 'test-slurm', '--computer', 'slurm')
    assert clash.returncode != 0
    assert 'uses scheduler `core.slurm`, not `core.direct`' in clash.stdout + clash.stderr
