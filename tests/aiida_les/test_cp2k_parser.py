"""les.cp2k parser on recorded CP2K runs (tests/aiida_les/parsers/fixtures/cp2k/<case>, see record_fixtures.py)."""

import json
import pathlib

import numpy as np
import pytest
from aiida import orm
from ase import units
from ase.build import bulk, molecule

from aiida_les.calculations.cp2k import LesCp2kCalculation
from aiida_les.labelling.cp2k_output import DEBYE_IN_E_ANGSTROM, parse_cp2k_output
from aiida_les.parsers.cp2k import LesCp2kParser
from les_model.electrostatics.polarization import nearest_image as fold_dipole

FIXTURES = pathlib.Path(__file__).resolve().parent / 'parsers' / 'fixtures' / 'cp2k'
EXIT = LesCp2kCalculation.exit_codes


def _structure(name):
    """The structures of record_fixtures.py."""
    if name in ('NaCl', 'NaCl_rattled'):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        if name == 'NaCl_rattled':
            atoms.rattle(0.1, seed=1)
            atoms.positions += [1.3, 0.4, -0.7]
        return orm.StructureData(ase=atoms)
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = name == 'H2O_box'
    return orm.StructureData(ase=atoms)


@pytest.fixture
def parse_case(generate_calc_job_node, tmp_path):
    """Return a function parsing a recorded case (or a copy of it without some files) through ``parse_from_node``.

    ``edit`` (optional) is called with the copied folder before parsing, to derive failure cases from real runs.
    """

    def factory(case: str, drop: tuple[str, ...] = (), edit=None):
        source = FIXTURES / case
        recorded = json.loads((source / 'inputs.json').read_text())
        folder = tmp_path / case
        folder.mkdir()
        for path in source.iterdir():
            if path.name not in drop and path.name != 'inputs.json':
                (folder / path.name).write_bytes(path.read_bytes())
        if edit is not None:
            edit(folder)
        inputs = {
            'structure': _structure(recorded['structure']),
            'parameters': orm.Dict(recorded['parameters']),
            'total_charge': orm.Int(recorded['total_charge']),
            'multiplicity': orm.Int(recorded['multiplicity']),
        }
        node = generate_calc_job_node('les.cp2k', folder, inputs)
        results, calcfunction = LesCp2kParser.parse_from_node(node, store_provenance=False)
        return results, calcfunction

    return factory


def test_success_molecule(parse_case, data_regression):
    results, calcfunction = parse_case('h2o_success')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    params = results['output_parameters'].get_dict()
    text = (FIXTURES / 'h2o_success' / 'aiida.out').read_text()
    energy_hartree = float(next(line for line in text.splitlines() if 'ENERGY| Total FORCE_EVAL' in line).split()[-1])
    # 1 Hartree = 27.211386 eV (CODATA 2014 and 2018 agree to 1e-8).
    assert params['energy'] == pytest.approx(energy_hartree * 27.211386, rel=1e-7)
    forces = results['forces'].get_array('forces')
    # Hartree/bohr -> eV/Å is 51.4220675 (8.2387235e-8 N).
    block = text[text.index('ATOMIC FORCES in [a.u.]') :].splitlines()[3]
    np.testing.assert_allclose(forces[0], np.array(block.split()[3:6], dtype=float) * 51.4220675, rtol=1e-7)
    assert 'stress' not in results
    frame = results['labelled'].get_ase()[0]
    assert frame.info['level_of_theory'] == params['level_of_theory']
    assert frame.info['total_charge'] == 0
    assert frame.info['spin_multiplicity'] == 1
    assert results['labelled'].base.attributes.get('level_of_theory') == params['level_of_theory']
    data_regression.check(
        {key: value for key, value in params.items() if key not in ('cp2k_seconds', 'runner_seconds')}
    )


def test_success_periodic(parse_case):
    """NaCl: stress converted from GPa with ase's sign (CP2K prints the opposite sign)."""
    results, calcfunction = parse_case('nacl_success')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    text = (FIXTURES / 'nacl_success' / 'aiida.out').read_text()
    row = text[text.index('STRESS| Analytical stress tensor [GPa]') :].splitlines()[2].split()
    stress = results['stress'].get_array('stress')
    assert stress[0, 0] == pytest.approx(-float(row[2]) * units.GPa, rel=1e-9)
    assert results['forces'].get_array('forces').shape == (8, 3)
    assert {'energy', 'forces', 'stress', 'level_of_theory'} <= set(results['labelled'].labels)


def test_mulliken_charges_in_atom_order(parse_case):
    """GFN1-xTB lists Mulliken charges grouped by kind (Na 1, 3, 5, 7, then Cl): they come back in atom order."""
    results, _ = parse_case('nacl_success')
    charges = np.asarray(results['output_parameters']['mulliken_charges'])
    symbols = _structure('NaCl').get_ase().get_chemical_symbols()
    assert symbols[:2] == ['Na', 'Cl']
    np.testing.assert_array_equal(np.sign(charges), [1 if s == 'Na' else -1 for s in symbols])


def test_scf_recovered(parse_case):
    results, calcfunction = parse_case('scf_recovered')
    assert calcfunction.is_finished_ok
    params = results['output_parameters'].get_dict()
    assert params['n_corrections'] == 1
    assert params['corrections'][0]['name'] == 'restart_more_iterations'
    assert params['scf_converged']


@pytest.mark.parametrize(
    ('case', 'exit_code', 'in_message'),
    [
        ('scf_not_converged', EXIT.ERROR_SCF_NOT_CONVERGED, 'two_more_steps'),
        ('correction_refused', EXIT.ERROR_SCF_CORRECTION_REFUSED, 'FORCE_EVAL/DFT/SCF/SMEAR'),
        ('cp2k_aborted', EXIT.ERROR_CP2K_ABORTED, 'xTB Charges'),
        ('out_of_walltime', EXIT.ERROR_OUT_OF_WALLTIME, ''),
        ('out_of_memory', EXIT.ERROR_OUT_OF_MEMORY, ''),
        ('label_inconsistent', EXIT.ERROR_LABEL_INCONSISTENT, 'corrections changed the computed settings'),
    ],
)
def test_failures(parse_case, case, exit_code, in_message):
    results, calcfunction = parse_case(case)
    assert calcfunction.exit_status == exit_code.status, calcfunction.exit_message
    assert in_message in calcfunction.exit_message
    assert 'labelled' not in results
    assert 'forces' not in results
    assert 'output_parameters' in results


@pytest.mark.parametrize(
    ('drop', 'exit_code'),
    [(('aiida.out',), EXIT.ERROR_OUTPUT_STDOUT_MISSING), (('corrections.json',), EXIT.ERROR_CORRECTIONS_FILE_MISSING)],
)
def test_missing_files(parse_case, drop, exit_code):
    _, calcfunction = parse_case('h2o_success', drop=drop)
    assert calcfunction.exit_status == exit_code.status


def test_labels_not_for_other_inputs(generate_calc_job_node, tmp_path):
    """Outputs recorded for water cannot be parsed as the label of another structure: the settings hash differs."""
    source = FIXTURES / 'h2o_success'
    recorded = json.loads((source / 'inputs.json').read_text())
    atoms = molecule('H2O')
    atoms.center(vacuum=4.5)
    atoms.pbc = False
    inputs = {
        'structure': orm.StructureData(ase=atoms),
        'parameters': orm.Dict(recorded['parameters']),
        'total_charge': orm.Int(0),
        'multiplicity': orm.Int(1),
    }
    folder = tmp_path / 'copy'
    folder.mkdir()
    for name in ('aiida.inp', 'aiida.out', 'corrections.json', 'cp2k.err', 'les_cp2k.log'):
        (folder / name).write_bytes((source / name).read_bytes())
    node = generate_calc_job_node('les.cp2k', folder, inputs)
    _, calcfunction = LesCp2kParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == EXIT.ERROR_LABEL_INCONSISTENT.status


# --- electrical-response labels: Berry-phase dipole and finite-difference Born charges --------------------------


def _printed_dipole(case: str) -> np.ndarray:
    """The last dipole CP2K printed in ``aiida.out``, converted to e·Å."""
    text = (FIXTURES / case / 'aiida.out').read_text()
    parsed = parse_cp2k_output(text)
    assert parsed['dipole_unit'] == 'Debye'
    return np.asarray(parsed['dipole']) * DEBYE_IN_E_ANGSTROM


def test_periodic_dipole_xtb(parse_case):
    """Rattled NaCl, GFN1-xTB: the folded point-charge dipole of CP2K's Mulliken charges at the frame positions.

    CP2K prints the Berry phase of those charges after wrapping every atom into the cell around the origin: checked
    here to 1e-5 e·Å. Some atoms of this structure lie outside that cell, so the two conventions differ by
    sum_j q_j n_j R, not a polarization quantum for fractional charges: the reason the label uses the frame positions.
    """
    results, calcfunction = parse_case('nacl_dipole')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    params = results['output_parameters'].get_dict()
    atoms = _structure('NaCl_rattled').get_ase()
    cell = np.asarray(atoms.cell)
    charges = np.asarray(params['mulliken_charges'])
    assert params['dipole_periodic'] is True
    assert params['dipole_units'] == 'e*Angstrom'
    np.testing.assert_allclose(params['dipole'], fold_dipole(charges @ atoms.positions, cell), atol=1e-12)
    frac = np.linalg.solve(cell.T, params['dipole'])
    assert np.all(np.abs(frac) <= 0.5)

    fractional = atoms.positions @ np.linalg.inv(cell)
    wrapped = (fractional - np.round(fractional)) @ cell
    printed = _printed_dipole('nacl_dipole')
    np.testing.assert_allclose(fold_dipole(charges @ wrapped, cell), printed, atol=1e-5)
    assert np.abs(fold_dipole(printed, cell) - np.asarray(params['dipole'])).max() > 1e-3

    frame = results['labelled'].get_ase()[0]
    np.testing.assert_allclose(frame.get_dipole_moment(), params['dipole'])  # ase reads it into the calculator
    assert 'dipole' in results['labelled'].labels
    assert 'born_charges' not in results


def test_bec_molecule_xtb(parse_case, data_regression):
    """Water, GFN1-xTB: Z* from 18 displaced single points; out-of-plane Z*_xx equals the Mulliken charge.

    The molecule lies in the yz plane: moving an atom along x changes no charge to first order (mirror symmetry), so
    d(sum_j q_j r_j)/dx_k = q_k exactly. The acoustic sum rule holds to the SCF and print precision.
    """
    results, calcfunction = parse_case('h2o_bec')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    params = results['output_parameters'].get_dict()
    bec = results['born_charges'].get_array('born_charges')
    assert bec.shape == (3, 3, 3)
    np.testing.assert_allclose(bec[:, 0, 0], params['mulliken_charges'], atol=2e-4)
    np.testing.assert_allclose(bec[:, 0, 1:], 0.0, atol=1e-6)
    # The two hydrogens are mirror images through the xz plane: Z*_yz and Z*_zy flip sign, the diagonal does not.
    np.testing.assert_allclose(np.diag(bec[1]), np.diag(bec[2]), atol=1e-5)
    np.testing.assert_allclose(bec[1, 1, 2], -bec[2, 1, 2], atol=1e-5)
    assert params['bec_acoustic_sum_rule_violation'] == pytest.approx(np.abs(bec.sum(axis=0)).max())
    assert params['bec_acoustic_sum_rule_violation'] < 1e-3
    assert params['bec_evaluations'] == 18
    frame = results['labelled'].get_ase()[0]
    np.testing.assert_allclose(frame.arrays['bec'].reshape(3, 3, 3), bec)
    assert {'bec', 'dipole'} <= set(results['labelled'].labels)
    data_regression.check(
        {
            'bec': np.round(bec, 4).tolist(),
            'dipole': np.round(params['dipole'], 6).tolist(),
            'bec_displacement': params['bec_displacement'],
            'bec_evaluations': params['bec_evaluations'],
        }
    )


def test_bec_crystal_xtb(parse_case):
    """Rock-salt NaCl, GFN1-xTB: cubic Z*(Na) = -Z*(Cl) = 1.06 e (GFN1-xTB range 1.0-1.3), sum rule to 1e-3 e."""
    results, calcfunction = parse_case('nacl_bec')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    params = results['output_parameters'].get_dict()
    bec = results['born_charges'].get_array('born_charges')
    symbols = _structure('NaCl').get_ase().get_chemical_symbols()
    for k, symbol in enumerate(symbols):
        sign = 1.0 if symbol == 'Na' else -1.0
        np.testing.assert_allclose(bec[k], sign * bec[0, 0, 0] * np.eye(3), atol=2e-4)
    assert 1.0 < bec[0, 0, 0] < 1.3
    assert params['bec_acoustic_sum_rule_violation'] < 1e-3


def test_bec_molecule_in_periodic_box_gpw(parse_case):
    """Water in a periodic box, PBE/DZVP: CP2K's electronic Berry-phase dipole and its finite-difference Z*."""
    results, calcfunction = parse_case('h2o_box_gpw_bec')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    params = results['output_parameters'].get_dict()
    atoms = _structure('H2O_box').get_ase()
    printed = _printed_dipole('h2o_box_gpw_bec')
    assert parse_cp2k_output((FIXTURES / 'h2o_box_gpw_bec' / 'aiida.out').read_text())['dipole_point_charges'] is False
    np.testing.assert_allclose(params['dipole'], fold_dipole(printed, np.asarray(atoms.cell)), atol=1e-12)
    # About 1.9 D (0.4 e·Å) along -z: hydrogens below the oxygen.
    assert params['dipole'][2] == pytest.approx(-0.40, abs=0.03)
    bec = results['born_charges'].get_array('born_charges')
    assert params['bec_acoustic_sum_rule_violation'] < 0.05
    assert bec[0, 0, 0] < -0.2  # oxygen negative
    np.testing.assert_allclose(np.diag(bec[1]), np.diag(bec[2]), atol=1e-2)


def _edit_bec_record(change):
    def edit(folder):
        record = json.loads((folder / 'bec.json').read_text())
        change(record)
        (folder / 'bec.json').write_text(json.dumps(record))

    return edit


def _fail_status(folder):
    corrections = json.loads((folder / 'corrections.json').read_text())
    corrections.update({'status': 'bec_failed', 'message': 'Born effective charges: scf_not_converged: a0001_ym'})
    (folder / 'corrections.json').write_text(json.dumps(corrections))


@pytest.mark.parametrize(
    ('drop', 'edit', 'exit_code', 'in_message'),
    [
        (('bec.json',), None, EXIT.ERROR_BEC_FILE_MISSING, ''),
        ((), _edit_bec_record(lambda r: r.update(settings_sha1='0' * 40)), EXIT.ERROR_LABEL_INCONSISTENT, '0000'),
        ((), _edit_bec_record(lambda r: r['evaluations'].pop(4)), EXIT.ERROR_BEC_FAILED, 'does not cover'),
        ((), _fail_status, EXIT.ERROR_BEC_FAILED, 'a0001_ym'),
    ],
)
def test_bec_failures(parse_case, drop, edit, exit_code, in_message):
    """Born charges requested but missing, run with other settings, incomplete or failed: no label at all."""
    results, calcfunction = parse_case('h2o_bec', drop=drop, edit=edit)
    assert calcfunction.exit_status == exit_code.status, calcfunction.exit_message
    assert in_message in calcfunction.exit_message
    assert 'labelled' not in results
    assert 'output_parameters' in results


def test_bec_failure_leaves_no_partial_label(parse_case):
    """A crystal whose Born-charge record is missing gets neither forces nor stress nor a frame."""
    results, calcfunction = parse_case('nacl_bec', drop=('bec.json',))
    assert calcfunction.exit_status == EXIT.ERROR_BEC_FILE_MISSING.status
    assert set(results) == {'output_parameters'}
