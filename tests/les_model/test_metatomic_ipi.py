"""A real i-PI run of the exported model: 100 steps of NVT (SVR thermostat) on a 16-atom NaCl box.

The test starts the i-PI server (``i-pi input.xml``) on a Unix socket and i-PI's own metatomic client
(``i-pi-driver-py -m metatomic``) with the exported committee; both are the ``ipi`` package's programs. It checks
that the run finished its 100 steps, that the first step's potential energy is the native committee's, and that
temperature and conserved quantity stay sane (the SVR conserved quantity includes the thermostat's work).
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

pytest.importorskip('metatomic.torch')
pytest.importorskip('ipi')

from les_model.calculator import LesCalculator  # noqa: E402
from les_model.config import ModelConfig  # noqa: E402
from les_model.metatomic_model import export_metatomic  # noqa: E402
from les_model.nn.model import LesModel  # noqa: E402

BIN = pathlib.Path(sys.executable).parent
SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), str(BIN)])
I_PI = shutil.which('i-pi', path=SEARCH_PATH)
DRIVER = shutil.which('i-pi-driver-py', path=SEARCH_PATH)
pytestmark = pytest.mark.skipif(I_PI is None or DRIVER is None, reason='the i-PI programs are not installed')

TINY = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 1, 'cutoff': 4.0}
STEPS = 100
TEMPERATURE = 300.0  # K

INPUT = """<simulation verbosity='low' safe_stride='1000'>
  <output prefix='sim'>
    <properties stride='1' filename='out' flush='1'>
      [ step, conserved{{electronvolt}}, temperature{{kelvin}}, potential{{electronvolt}} ]
    </properties>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>31415</seed></prng>
  <ffsocket name='les' mode='unix' pbc='false'><address>{address}</address><latency>1e-4</latency></ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='ase' units='angstrom'>init.extxyz</file>
      <velocities mode='thermal' units='kelvin'>{temperature}</velocities>
    </initialize>
    <forces><force forcefield='les'/></forces>
    <ensemble><temperature units='kelvin'>{temperature}</temperature></ensemble>
    <motion mode='dynamics'>
      <dynamics mode='nvt'>
        <timestep units='femtosecond'>1.0</timestep>
        <thermostat mode='svr'><tau units='femtosecond'>20</tau></thermostat>
      </dynamics>
    </motion>
  </system>
</simulation>
"""


def _committee():
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        model = LesModel(ModelConfig(**TINY), species=[11, 17], reference_energies={11: -1.0, 17: -2.0}).double()
        with torch.no_grad():  # non-uniform latent charges, so the long-range part contributes
            model.charge_head.weight_net[2].weight.normal_()
            model.energy_scale.fill_(0.3)
        models.append(model.eval())
    return models


def _wait_for(predicate, process, timeout, what):
    start = time.monotonic()
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f'{what}: the process exited early with {process.returncode}')
        if time.monotonic() - start > timeout:
            raise AssertionError(f'{what}: timed out after {timeout} s')
        time.sleep(0.05)


def test_ipi_nvt_with_exported_model(tmp_path):
    models = _committee()
    export_metatomic(models, tmp_path / 'model.pt')
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=3)
    ase.io.write(tmp_path / 'init.extxyz', atoms)
    native = atoms.copy()
    native.calc = LesCalculator(models)
    first_energy = native.get_potential_energy()

    address = f'les-{uuid.uuid4().hex[:12]}'
    (tmp_path / 'input.xml').write_text(INPUT.format(steps=STEPS, address=address, temperature=TEMPERATURE))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PATH': SEARCH_PATH}
    with open(tmp_path / 'server.log', 'w') as log:
        server = subprocess.Popen([I_PI, 'input.xml'], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    client = None
    try:
        socket_path = pathlib.Path(f'/tmp/ipi_{address}')
        _wait_for(socket_path.exists, server, 30, 'i-PI server socket')
        with open(tmp_path / 'client.log', 'w') as log:
            client = subprocess.Popen(
                [DRIVER, '-u', '-a', address, '-m', 'metatomic', '-o', 'template=init.extxyz,model=model.pt'],
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server.wait(timeout=120)
    finally:
        for process in (client, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    logs = {name: (tmp_path / f'{name}.log').read_text()[-2000:] for name in ('server', 'client')}
    assert server.returncode == 0, logs

    data = np.loadtxt(tmp_path / 'sim.out', ndmin=2)
    step, conserved, temperature, potential = data.T
    assert step[-1] == STEPS, logs
    assert len(step) == STEPS + 1
    # i-PI prints 8 significant digits
    assert potential[0] == pytest.approx(first_energy, rel=1e-7, abs=1e-6)
    assert np.all(np.isfinite(data))
    assert 50.0 < temperature[1:].mean() < 1000.0
    # SVR keeps the sum of total energy and thermostat work; 100 fs at 1 fs drifts far below k_B T per atom
    kinetic_scale = 1.5 * len(atoms) * 8.617333e-5 * TEMPERATURE  # eV
    assert np.abs(conserved - conserved[0]).max() < 0.05 * kinetic_scale, conserved
