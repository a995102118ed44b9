"""Smoke test of benchmarks/charges.py on generated files in the formats the external data use (forces under
``force``, a 1x3 per-frame dipole, 9-column Born charges): reading, training on E/F only, sign-aware metrics.
"""

import importlib.util
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest

from les_model.data.synthetic import label_point_charges, random_ionic_structures

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'charges.py'


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_charges', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spice_like_file(path: Path, seed: int) -> Path:
    clusters = random_ionic_structures(6, 8, seed=seed)
    for atoms in clusters:
        atoms.pbc = False
    frames = []
    for atoms in label_point_charges(clusters, {11: 1.0, 17: -1.0}):
        plain = atoms.copy()
        plain.calc = None
        plain.info['energy'] = atoms.get_potential_energy()
        plain.arrays['force'] = atoms.get_forces()
        q = atoms.arrays['charges_true']
        plain.info['dipole'] = (q[:, None] * atoms.positions).sum(axis=0)[None, :]  # 1x3, as in SPICE files
        plain.arrays['bec'] = np.stack([qi * np.eye(3).reshape(9) for qi in q])
        frames.append(plain)
    ase.io.write(path, frames, format='extxyz')
    return path


def test_reads_external_formats_and_reports_raw_and_scaled_r2(bench, tmp_path):
    train = _spice_like_file(tmp_path / 'train.xyz', seed=1)
    test = _spice_like_file(tmp_path / 'test.xyz', seed=2)
    frame = bench.read_frames(train, 1)[0]
    assert frame.info['dipole'].shape == (3,)
    assert frame.get_forces().shape == (8, 3)
    assert frame.arrays['bec'].shape == (8, 9)
    output = tmp_path / 'out.json'
    argv = ['--train', str(train), '--test', str(test), '--epochs', '2', '--seeds', '0', '--features', '8',
            '--interactions', '1', '--cutoff', '3.5', '--skip-fragment', '--output', str(output)]  # fmt: skip
    assert bench.main(argv) == 0
    results = json.loads(output.read_text())
    metrics = results['seeds'][0]['test.xyz']
    assert {'dipole_r2', 'dipole_r2_scaled', 'dipole_scale', 'bec_r2', 'bec_r2_transposed'} <= set(metrics)
    assert metrics['mean_charge']['Cl'] < 0 < metrics['mean_charge']['Na']  # the sign convention at work
