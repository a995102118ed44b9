"""Tests of the ``les.phonons`` workchain and its calcfunctions.

The calcfunctions are checked on rigid-ion NaCl predictions (point charges +-1 with Born-Mayer repulsion, labelled
here) against the analytic TO frequency and LO-TO splitting; the workchain runs end to end with the real ``les-eval``.
"""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import sys

import numpy as np
import phonopy
import pytest
import torch
from aiida import orm
from aiida.engine import run_get_node
from ase import units

from aiida_les.data.dataset import LesDatasetData
from les_model.data.synthetic import label_point_charges
from les_model.testing.structures import rocksalt
from les_model.units import COULOMB_CONSTANT
from workchains.phonons.functions import compute_phonons, generate_phonon_dataset, validate_parameters
from workchains.phonons.workchain import LesPhononsWorkChain

THZ = math.sqrt(units._e / (1e-20 * units._amu)) / (2.0 * math.pi) / 1e12  # sqrt(eV / Å^2 / amu) in THz
R0, AMPLITUDE, RHO = 2.82, 1000.0, 0.3  # label_point_charges' Born-Mayer defaults (cutoff 6 Å)
BIN = str(pathlib.Path(sys.executable).parent)
SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), BIN])


def test_validate_parameters():
    assert validate_parameters(orm.Dict({'eps_inf': 2.0, 'supercell_matrix': [2, 2, 2]})) is None
    assert 'unknown keys' in validate_parameters(orm.Dict({'mesh': 3}))
    assert 'displacement must be > 0' in validate_parameters({'displacement': 0.0})
    assert 'scale_bec_by_eps_inf needs eps_inf' in validate_parameters({'scale_bec_by_eps_inf': True})
    assert 'eps_inf must be' in validate_parameters({'eps_inf': -1.0})
    assert 'supercell_matrix must be' in validate_parameters({'supercell_matrix': [2.5, 2, 2]})


def _rigid_ion_predictions(dataset: LesDatasetData) -> LesDatasetData:
    """What les-eval would write for a model with fixed charges +-1: ``les_forces`` and ``les_bec`` = q I."""
    frames = label_point_charges(dataset.get_ase(), {11: 1.0, 17: -1.0})
    for atoms in frames:
        atoms.arrays['les_forces'] = atoms.get_forces()
        atoms.arrays['les_bec'] = (atoms.arrays['charges_true'][:, None, None] * np.eye(3)).reshape(-1, 9)
        atoms.calc = None
    return LesDatasetData.from_ase(frames)


def test_compute_phonons_rigid_ion_matches_analytic_gamma():
    atoms = rocksalt(R0)
    eps_inf = 2.0
    parameters = orm.Dict(
        {'supercell_matrix': 2, 'displacement': 0.002, 'eps_inf': eps_inf, 'band_npoints': 11, 'dos_mesh': 6}
    )
    structure = orm.StructureData(ase=atoms)
    dataset = generate_phonon_dataset(structure, parameters)
    roles = [frame.info['phonon_role'] for frame in dataset.get_ase()]
    assert roles == ['unitcell', 'supercell', 'displacement', 'displacement']  # Na and Cl, one direction each
    outputs, node = compute_phonons.run_get_node(structure, parameters, _rigid_ion_predictions(dataset))
    assert node.is_finished_ok
    gamma = outputs['gamma_frequencies'].get_dict()
    np.testing.assert_allclose(np.array(gamma['born_charges'])[:, 0, 0], [1.0, -1.0], atol=1e-8)
    assert gamma['asr_violation'] < 1e-3
    # analytic rigid-ion rock salt: Born-Mayer shells at r0 (6) and sqrt(3) r0 (8) within the 6 Å cutoff, Lorentz field
    k_sr = 0.0
    for r, weight_parallel, weight_perpendicular in ((R0, 2.0, 4.0), (math.sqrt(3.0) * R0, 8.0 / 3.0, 16.0 / 3.0)):
        phi = AMPLITUDE * math.exp(-r / RHO)
        k_sr += weight_parallel * phi / RHO**2 - weight_perpendicular * phi / (RHO * r)
    volume = atoms.get_volume()
    masses = atoms.get_masses()
    mu = masses.prod() / masses.sum()
    to = THZ * math.sqrt((k_sr - 4.0 * math.pi / 3.0 * COULOMB_CONSTANT / volume) / mu)
    lo = THZ * math.sqrt((to / THZ) ** 2 + 4.0 * math.pi * COULOMB_CONSTANT / (eps_inf * volume * mu))
    frequencies = np.array(gamma['frequencies_thz'])
    np.testing.assert_allclose(frequencies[3:5], to, rtol=3e-4)
    np.testing.assert_allclose(frequencies[5], lo, rtol=3e-4)
    np.testing.assert_allclose(gamma['frequencies_without_nac_thz'][3:], to, rtol=3e-4)
    for name in ('phonopy_params', 'force_sets', 'born', 'band_yaml', 'total_dos', 'band_structure_png', 'dos_png'):
        assert isinstance(outputs[name], orm.SinglefileData), name


def test_compute_phonons_refuses_foreign_frames():
    structure = orm.StructureData(ase=rocksalt(R0))
    dataset = generate_phonon_dataset(structure, orm.Dict({'supercell_matrix': 2}))
    other = orm.Dict({'supercell_matrix': 2, 'displacement': 0.03})
    with pytest.raises(ValueError, match='not the phonopy displacements'):
        compute_phonons(structure, other, _rigid_ion_predictions(dataset))


@pytest.fixture
def les_eval_code(aiida_code_installed, aiida_localhost):
    executable = shutil.which('les-eval', path=SEARCH_PATH)
    if executable is None:
        pytest.skip('les-eval is not installed')
    aiida_localhost.set_minimum_job_poll_interval(0.0)
    aiida_localhost.configure(safe_interval=0.0)
    return aiida_code_installed(
        label='les-eval-phonons', default_calc_job_plugin='les.evaluate', filepath_executable=executable
    )


def test_workchain_end_to_end_with_les_eval(les_eval_code, tmp_path):
    from aiida_les.data.model import LesModelData
    from les_model.config import ModelConfig
    from les_model.io import save_model
    from les_model.nn.model import LesModel

    torch.manual_seed(0)
    tiny = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 1}
    model = LesModel(ModelConfig(cutoff=3.5, **tiny), species=[11, 17])
    model_node = LesModelData(save_model(model, tmp_path / 'model.pt'))
    inputs = {
        'structure': orm.StructureData(ase=rocksalt(R0)),
        'parameters': {'supercell_matrix': 2, 'eps_inf': 2.5, 'band_npoints': 5, 'dos_mesh': 4},
        'evaluate': {
            'code': les_eval_code,
            'models': {'m0': model_node},
            'metadata': {'options': {'device': 'cpu', 'max_wallclock_seconds': 600}},
        },
    }
    outputs, node = run_get_node(LesPhononsWorkChain, **inputs)
    assert node.is_finished_ok, node.exit_message
    gamma = outputs['gamma_frequencies'].get_dict()
    assert gamma['nac'] is True
    assert len(gamma['frequencies_thz']) == 6
    assert gamma['asr_violation'] < 1e-3
    assert outputs['displacements'].n_structures == 4
    evaluate = node.base.links.get_outgoing(link_label_filter='evaluate').one().node
    assert evaluate.inputs.config['compute_bec'] is True
    # the stored phonopy parameters reproduce the LO-TO split Gamma frequencies
    path = tmp_path / 'phonopy_params.yaml'
    path.write_bytes(outputs['phonopy_params'].get_content(mode='rb'))
    reloaded = phonopy.load(path, log_level=0)
    reloaded.run_qpoints([[0.0, 0.0, 0.0]], nac_q_direction=gamma['q_direction'])
    np.testing.assert_allclose(np.sort(reloaded.qpoints.frequencies[0]), gamma['frequencies_thz'], atol=1e-6)
    assert outputs['band_structure_png'].filename == 'band_structure.png'
