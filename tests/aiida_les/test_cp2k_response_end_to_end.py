"""Electrical-response labels end to end: real CP2K (GFN1-xTB) through les.cp2k, LesDatasetData, then les-train.

Water gets its dipole and finite-difference Born charges, rock-salt NaCl its Berry-phase dipole; the merged dataset
trains a tiny LES model with dipole and Born-charge losses, whose errors must go down. Physics checks: the acoustic
sum rule of the CP2K Born charges, and a rigid translation of the crystal leaves its dipole unchanged. The slow test
labels the Born charges of 8-atom NaCl (48 displaced single points).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk, molecule

from aiida_les.calculations.cp2k import LesCp2kCalculation
from aiida_les.data.dataset import LesDatasetData
from aiida_les.labelling.cp2k_bec import dipole_from_output, run_bec
from aiida_les.labelling.cp2k_input import build_cp2k_input
from aiida_les.labelling.cp2k_output import parse_cp2k_output
from aiida_les.labelling.cp2k_runner import run_cp2k
from les_model.electrostatics.polarization import nearest_image as fold_dipole
from workchains.label.cp2k_base import LesCp2kBaseWorkChain

LES_CP2K = shutil.which('les-cp2k') or shutil.which('les-cp2k', path=os.path.dirname(sys.executable))
LES_TRAIN = shutil.which('les-train') or shutil.which('les-train', path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(
    shutil.which('cp2k.psmp') is None or LES_CP2K is None, reason='needs cp2k.psmp and les-cp2k'
)
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


def _parameters(**switches) -> dict:
    parameters = LesCp2kBaseWorkChain.get_protocol_inputs('fast')['cp2k']['parameters']
    parameters.update(switches)
    return parameters


def _water():
    atoms = molecule('H2O')
    atoms.positions[1] += [0.0, 0.04, 0.03]  # off equilibrium: non-zero forces, no mirror symmetry between the Hs
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    return atoms


def _nacl():
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(0.05, seed=2)
    return atoms


def _label(code, atoms, parameters):
    inputs = {
        'code': code,
        'structure': orm.StructureData(ase=atoms),
        'parameters': orm.Dict(parameters),
        'metadata': {'options': dict(OPTIONS)},
    }
    results, node = run_get_node(LesCp2kCalculation, **inputs)
    assert node.is_finished_ok, node.exit_message
    return results, node


@pytest.fixture
def cp2k_code(aiida_code_installed):
    return aiida_code_installed(label='les-cp2k-real', default_calc_job_plugin='les.cp2k', filepath_executable=LES_CP2K)


def _train(workdir: Path, data: Path, epochs: int) -> dict:
    """Run ``les-train`` (a real subprocess) with dipole and Born-charge losses; return metrics.json."""
    config = {
        'train_file': str(data),
        'valid_fraction': 0.0,
        'epochs': epochs,
        'batch_size': 2,
        'lr': 0.01,
        'scheduler': 'none',
        'ema_decay': 0.0,
        'energy_weight': 0.01,
        'forces_weight': 1.0,
        'dipole_weight': 10.0,
        'bec_weight': 10.0,
        'progress': False,
        'dtype': 'float64',
        'model': {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 1},
    }
    (workdir / 'train.yaml').write_text(yaml.safe_dump(config))
    command = [LES_TRAIN] if LES_TRAIN else [sys.executable, '-m', 'les_model.cli.train']
    result = subprocess.run(
        [*command, 'train.yaml', '--device', 'cpu'],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((workdir / 'metrics.json').read_text())


def test_response_labels_to_training(cp2k_code, tmp_path):
    """CP2K dipole + Born charges -> LesDatasetData -> les-train: dipole and BEC losses present and decreasing."""
    water = _label(cp2k_code, _water(), _parameters(bec=True))[0]
    params_water = water['output_parameters'].get_dict()
    bec = water['born_charges'].get_array('born_charges')
    # Acoustic sum rule of the CP2K Born charges of a neutral molecule (reported by the parser too).
    assert np.abs(bec.sum(axis=0)).max() == pytest.approx(params_water['bec_acoustic_sum_rule_violation'])
    assert params_water['bec_acoustic_sum_rule_violation'] < 1e-3
    assert bec[0, 0, 0] < 0 < bec[1, 0, 0]  # oxygen negative, hydrogen positive

    nacl = _nacl()
    crystal = _label(cp2k_code, nacl, _parameters(dipole=True))[0]
    assert crystal['output_parameters']['dipole_periodic'] is True
    assert 'born_charges' not in crystal
    # A rigid translation t of the neutral crystal changes its dipole by (sum_j q_j) t = 0.
    moved = nacl.copy()
    moved.positions += [0.01, -0.02, 0.015]
    record = run_cp2k(
        {'input': build_cp2k_input(moved, _parameters(dipole=True)), 'cp2k_command': ['cp2k.psmp']}, tmp_path
    )
    assert record['status'] == 'ok', record
    parsed = parse_cp2k_output((tmp_path / 'aiida.out').read_text())
    translated = fold_dipole(dipole_from_output(parsed, moved.positions, np.asarray(moved.cell)), moved.cell)
    np.testing.assert_allclose(translated, crystal['output_parameters']['dipole'], atol=1e-4)

    frames = water['labelled'].get_ase() + crystal['labelled'].get_ase()
    dataset = LesDatasetData.from_ase(frames)
    assert dataset.level_of_theory == params_water['level_of_theory']
    assert {'energy', 'forces', 'dipole'} <= set(dataset.labels)  # bec only on water: not in every frame
    workdir = tmp_path / 'train'
    workdir.mkdir()
    data = workdir / 'data.extxyz'
    data.write_bytes(dataset.get_content(mode='rb'))

    metrics = _train(workdir, data, epochs=8)
    first = metrics['members'][0]['epochs'][0]['train']
    final = metrics['final']['train']
    for key in ('dipole_mae', 'bec_mae'):
        assert key in first, sorted(first)
        assert key in final, sorted(final)
        # Measured: dipole 130 -> 52 me·Å, BEC 147 -> 22 me over 8 epochs.
        assert final[key] < 0.8 * first[key], (key, first[key], final[key])


def test_born_charges_stop_at_the_time_budget(tmp_path):
    """The 48 displaced single points of NaCl cannot finish in 1 s: stopped, recorded as out of time."""
    sections = build_cp2k_input(bulk('NaCl', 'rocksalt', a=5.64, cubic=True), _parameters(bec=True))
    started = time.monotonic()
    record = run_bec(sections, ['cp2k.psmp'], 0.01, tmp_path, deadline=time.time())
    assert time.monotonic() - started < 30
    assert record['status'] == 'time_budget_exceeded'
    assert json.loads((tmp_path / 'bec.json').read_text())['status'] == 'time_budget_exceeded'
    assert len(record['evaluations']) == 48


@pytest.mark.slow
def test_born_charges_of_rock_salt(cp2k_code):
    """8-atom NaCl, GFN1-xTB, 48 displaced single points: Z*(Na) in 1.0-1.3 e, sum rule within 1e-3 e."""
    results, _ = _label(cp2k_code, bulk('NaCl', 'rocksalt', a=5.64, cubic=True), _parameters(bec=True))
    bec = results['born_charges'].get_array('born_charges')
    params = results['output_parameters'].get_dict()
    assert 1.0 < bec[0, 0, 0] < 1.3
    np.testing.assert_allclose(bec[0], bec[0, 0, 0] * np.eye(3), atol=2e-4)
    assert params['bec_acoustic_sum_rule_violation'] < 1e-3
    frame = results['labelled'].get_ase()[0]
    assert frame.arrays['bec'].shape == (8, 9)
