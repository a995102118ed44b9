"""les.cp2k with real CP2K (GFN1-xTB, fast protocol) through AiiDA: labels, units, corrections, failure exit codes.

Forces and stress are checked against central finite differences of CP2K's own energies (same input builder and
runner, run directly), which tests the unit conversions and the stress sign without any reference code.
"""

import json
import os
import shutil
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase import units
from ase.build import bulk, molecule

from aiida_les.calculations.cp2k import LesCp2kCalculation
from aiida_les.labelling.cp2k_input import build_cp2k_input
from aiida_les.labelling.cp2k_output import parse_cp2k_output
from aiida_les.labelling.cp2k_runner import run_cp2k
from workchains.label.cp2k_base import LesCp2kBaseWorkChain

# The runner sits next to this Python when the venv is not on PATH.
LES_CP2K = shutil.which('les-cp2k') or shutil.which('les-cp2k', path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(
    shutil.which('cp2k.psmp') is None or LES_CP2K is None, reason='needs cp2k.psmp and les-cp2k'
)
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


def _fast_parameters(**scf) -> dict:
    parameters = LesCp2kBaseWorkChain.get_protocol_inputs('fast')['cp2k']['parameters']
    parameters['force_eval']['DFT']['SCF'].update({'EPS_SCF': 1.0e-9, **scf})
    return parameters


def _energy(atoms, parameters, directory) -> float:
    """Energy (eV) of ``atoms`` from CP2K run by our runner, outside AiiDA."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {'input': build_cp2k_input(atoms, parameters), 'cp2k_command': ['cp2k.psmp']}
    record = run_cp2k(settings, directory)
    assert record['status'] == 'ok', record
    parsed = parse_cp2k_output((directory / 'aiida.out').read_text())
    return parsed['energy'] * units.Hartree


def _run(code, atoms, parameters, **kwargs):
    inputs = {
        'code': code,
        'structure': orm.StructureData(ase=atoms),
        'parameters': orm.Dict(parameters),
        'metadata': {'options': dict(OPTIONS)},
        **kwargs,
    }
    return run_get_node(LesCp2kCalculation, **inputs)


@pytest.fixture
def cp2k_code(aiida_code_installed):
    return aiida_code_installed(label='les-cp2k-real', default_calc_job_plugin='les.cp2k', filepath_executable=LES_CP2K)


def test_molecule_labels_and_finite_differences(cp2k_code, tmp_path):
    """Water: energy, forces (eV/Å) agree with central differences; charges sum to zero; dipole along z."""
    atoms = molecule('H2O')
    atoms.positions[1] += [0.05, 0.0, 0.03]  # off equilibrium so that forces are sizeable
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    parameters = _fast_parameters()
    results, node = _run(cp2k_code, atoms, parameters)
    assert node.is_finished_ok, node.exit_message
    params = results['output_parameters'].get_dict()
    forces = results['forces'].get_array('forces')
    assert forces.shape == (3, 3)
    assert 'stress' not in results
    assert params['scf_converged']
    assert params['n_corrections'] == 0
    assert params['level_of_theory'].startswith('cp2k/fast/GFN1-xTB#')
    assert abs(sum(params['mulliken_charges'])) < 1e-4
    assert params['mulliken_charges'][0] < 0  # oxygen carries the negative charge
    assert len(params['dipole']) == 3
    assert np.abs(forces.sum(axis=0)).max() < 1e-3  # translation invariance

    step = 0.005
    for atom, axis in ((1, 0), (0, 2)):
        energies = []
        for sign in (1, -1):
            displaced = atoms.copy()
            displaced.positions[atom, axis] += sign * step
            energies.append(_energy(displaced, parameters, tmp_path / f'fd_{atom}_{axis}_{sign}'))
        reference = -(energies[0] - energies[1]) / (2 * step)
        assert forces[atom, axis] == pytest.approx(reference, abs=1e-3)
    assert params['energy'] == pytest.approx(_energy(atoms, parameters, tmp_path / 'same'), abs=1e-6)

    frames = results['labelled'].get_ase()
    assert len(frames) == 1
    assert frames[0].info['level_of_theory'] == params['level_of_theory']
    np.testing.assert_allclose(frames[0].get_forces(), forces, atol=1e-7)


def test_periodic_labels_and_finite_differences(cp2k_code, tmp_path):
    """Rattled NaCl: forces and the stress (ase sign, eV/Å^3) agree with finite differences of energy."""
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(0.05, seed=3)
    parameters = _fast_parameters()
    results, node = _run(cp2k_code, atoms, parameters)
    assert node.is_finished_ok, node.exit_message
    forces = results['forces'].get_array('forces')
    stress = results['stress'].get_array('stress')
    assert stress.shape == (3, 3)
    np.testing.assert_allclose(stress, stress.T, atol=1e-8)

    step = 0.005
    energies = []
    for sign in (1, -1):
        displaced = atoms.copy()
        displaced.positions[2, 1] += sign * step
        energies.append(_energy(displaced, parameters, tmp_path / f'force_{sign}'))
    assert forces[2, 1] == pytest.approx(-(energies[0] - energies[1]) / (2 * step), abs=1e-3)

    # sigma_xx = (1/V) dE/d(eps_xx); a uniaxial strain of the cell with atoms following.
    strain, energies = 0.002, []
    for sign in (1, -1):
        deformation = np.eye(3)
        deformation[0, 0] += sign * strain
        strained = atoms.copy()
        strained.set_cell(atoms.cell @ deformation, scale_atoms=True)
        energies.append(_energy(strained, parameters, tmp_path / f'strain_{sign}'))
    reference = (energies[0] - energies[1]) / (2 * strain) / atoms.get_volume()
    assert stress[0, 0] == pytest.approx(reference, rel=0.02, abs=2e-4)


def test_unconverged_scf_recovered(cp2k_code):
    """MAX_SCF 3 cannot converge; custodian restarts with more iterations; the correction is recorded."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    results, node = _run(cp2k_code, atoms, _fast_parameters(MAX_SCF=3))
    assert node.is_finished_ok, node.exit_message
    params = results['output_parameters'].get_dict()
    assert params['n_corrections'] == 1
    correction = params['corrections'][0]
    assert correction['name'] == 'restart_more_iterations'
    assert correction['changes']['FORCE_EVAL/DFT/SCF/MAX_SCF'] == [3, 200]
    assert correction['changes']['FORCE_EVAL/DFT/SCF/SCF_GUESS'] == [None, 'RESTART']
    final_input = node.outputs.retrieved.base.repository.get_object_content('aiida.inp')
    assert 'MAX_SCF 200' in final_input
    assert 'MAX_SCF 3' in node.base.repository.get_object_content('aiida.inp')


def test_correction_changing_method_is_refused(cp2k_code):
    """A ladder step that switches on smearing would change the label: refused, exit 411, nothing labelled."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    ladder = [{'name': 'smear', 'set': {'FORCE_EVAL': {'DFT': {'SCF': {'SMEAR': {'METHOD': 'FERMI_DIRAC'}}}}}}]
    results, node = _run(
        cp2k_code, atoms, _fast_parameters(MAX_SCF=2), settings=orm.Dict({'ladder': ladder, 'max_corrections': 3})
    )
    assert node.exit_status == LesCp2kCalculation.exit_codes.ERROR_SCF_CORRECTION_REFUSED.status
    assert 'FORCE_EVAL/DFT/SCF/SMEAR' in node.exit_message
    params = results['output_parameters'].get_dict()
    assert params['corrections_refused'][0]['name'] == 'smear'
    assert 'labelled' not in results
    assert 'forces' not in results


def test_scf_unrecoverable(cp2k_code):
    """One correction allowed and it is not enough: exit 410 and the correction that was tried is listed."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    ladder = [{'name': 'two_more_steps', 'set': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 3}}}}}]
    results, node = _run(
        cp2k_code, atoms, _fast_parameters(MAX_SCF=1), settings=orm.Dict({'ladder': ladder, 'max_corrections': 1})
    )
    assert node.exit_status == LesCp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED.status
    assert 'two_more_steps' in node.exit_message
    assert results['output_parameters']['custodian_status'] == 'max_corrections'


def test_runner_refuses_unreadable_settings(tmp_path):
    from aiida_les.labelling.cp2k_runner import main

    (tmp_path / 'les_cp2k.json').write_text('{not json')
    assert main([str(tmp_path / 'les_cp2k.json')]) == 3
    assert not (tmp_path / 'corrections.json').exists()


def test_runner_writes_only_expected_files(tmp_path):
    """The runner writes the input it runs, CP2K's outputs and corrections.json (plus custodian's log)."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    settings = {'input': build_cp2k_input(atoms, _fast_parameters()), 'cp2k_command': ['cp2k.psmp']}
    record = run_cp2k(settings, tmp_path)
    assert record['status'] == 'ok'
    assert record['computed_settings_sha1_initial'] == record['computed_settings_sha1_final']
    written = set(os.listdir(tmp_path))
    assert written <= {'aiida.inp', 'aiida.out', 'cp2k.err', 'corrections.json', 'custodian.json', 'aiida-RESTART.wfn'}
    assert json.loads((tmp_path / 'corrections.json').read_text())['corrections'] == []


@pytest.mark.slow
def test_balanced_molecule(cp2k_code, tmp_path, request):
    """PBE-D3/DZVP water (MT Poisson solver): converged label, PBE-like dipole, one force by finite differences.

    At 400 Ry the plane-wave grid breaks translation invariance (egg-box effect): the forces on an isolated water
    sum to about 0.2 eV/Å. CP2K centres a molecule in its box (``CENTER_COORDINATES``), so moving atom i by h also
    moves the whole molecule by -h/N against the grid, and the central difference of the energy measures
    ``F_i - (1/N) sum_j F_j``: that is compared, to 1e-3 eV/Å (EPS_SCF 1e-8, step 0.002 Å). Three DFT runs take
    1-7 minutes on two shared cores, so the test only runs when selected with ``-m slow``.
    """
    if 'slow' not in (request.config.getoption('markexpr') or '') or 'not slow' in request.config.getoption('markexpr'):
        pytest.skip('DFT with a real basis: select with `-m slow`')
    atoms = molecule('H2O')
    atoms.positions[1] += [0.05, 0.0, 0.03]
    atoms.pbc = False
    parameters = LesCp2kBaseWorkChain.get_protocol_inputs('balanced')['cp2k']['parameters']
    parameters['force_eval']['DFT']['SCF'].update({'EPS_SCF': 1.0e-8})
    parameters['force_eval']['DFT']['SCF']['OUTER_SCF']['EPS_SCF'] = 1.0e-8
    results, node = _run(cp2k_code, atoms, parameters)
    assert node.is_finished_ok, node.exit_message
    params = results['output_parameters'].get_dict()
    assert params['level_of_theory'].startswith('cp2k/balanced/PBE-D3(BJ)/DZVP-MOLOPT-SR-GTH/GTH-PBE/400Ry#')
    assert 0.33 < np.linalg.norm(params['dipole']) < 0.43  # 1.6-2.1 D; PBE gives about 1.8 D
    forces = results['forces'].get_array('forces')
    assert np.linalg.norm(forces.sum(axis=0)) < 0.3  # egg-box residual at 400 Ry, see docstring
    # A small step: the egg-box energy oscillates with the grid spacing (about 0.08 Å at 400 Ry), and a 0.01 Å
    # step left a 3e-3 eV/Å truncation error.
    step, energies = 0.002, []
    for sign in (1, -1):
        displaced = atoms.copy()
        displaced.positions[1, 1] += sign * step
        energies.append(_energy(displaced, parameters, tmp_path / f'fd_{sign}'))
    assert abs(forces[1, 1]) > 0.5
    centred = forces[1, 1] - forces[:, 1].mean()  # the re-centring moves every atom by -step/N
    assert centred == pytest.approx(-(energies[0] - energies[1]) / (2 * step), abs=1e-3)
