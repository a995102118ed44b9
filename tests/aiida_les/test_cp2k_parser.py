"""les.cp2k parser on recorded CP2K runs (tests/aiida_les/parsers/fixtures/cp2k/<case>, see record_fixtures.py)."""

import json
import pathlib

import numpy as np
import pytest
from aiida import orm
from ase import units
from ase.build import bulk, molecule

from aiida_les.calculations.cp2k import LesCp2kCalculation
from aiida_les.parsers.cp2k import LesCp2kParser

FIXTURES = pathlib.Path(__file__).resolve().parent / 'parsers' / 'fixtures' / 'cp2k'
EXIT = LesCp2kCalculation.exit_codes


def _structure(name):
    if name == 'NaCl':
        return orm.StructureData(ase=bulk('NaCl', 'rocksalt', a=5.64, cubic=True))
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    return orm.StructureData(ase=atoms)


@pytest.fixture
def parse_case(generate_calc_job_node, tmp_path):
    """Return a function parsing a recorded case (or a copy of it without some files) through ``parse_from_node``."""

    def factory(case: str, drop: tuple[str, ...] = ()):
        source = FIXTURES / case
        recorded = json.loads((source / 'inputs.json').read_text())
        folder = tmp_path / case
        folder.mkdir()
        for path in source.iterdir():
            if path.name not in drop and path.name != 'inputs.json':
                (folder / path.name).write_bytes(path.read_bytes())
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
