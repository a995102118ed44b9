"""les.ase_label: any ASE calculator labels a structure through AiiDA with the same outputs as les.cp2k."""

import importlib.util
import os
import shutil
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from aiida_les.calculations.ase_label import LesAseLabelCalculation

LES_ASE_LABEL = shutil.which('les-ase-label') or shutil.which('les-ase-label', path=os.path.dirname(sys.executable))
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}


@pytest.fixture
def ase_code(aiida_code_installed):
    if LES_ASE_LABEL is None:
        pytest.skip('les-ase-label is not installed')
    return aiida_code_installed(
        label='les-ase-label-real', default_calc_job_plugin='les.ase_label', filepath_executable=LES_ASE_LABEL
    )


def _run(code, atoms, calculator, **kwargs):
    return run_get_node(
        LesAseLabelCalculation,
        code=code,
        structure=orm.StructureData(ase=atoms),
        calculator=orm.Dict(calculator),
        metadata={'options': OPTIONS},
        **kwargs,
    )


def test_emt_periodic(ase_code):
    """EMT on rattled Cu: energy, forces, stress equal ase's EMT evaluated here."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=0)
    results, node = _run(ase_code, atoms, {'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'})
    assert node.is_finished_ok, node.exit_message
    reference = atoms.copy()
    reference.calc = EMT()
    assert results['output_parameters']['energy'] == pytest.approx(reference.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(results['forces'].get_array('forces'), reference.get_forces(), atol=1e-8)
    np.testing.assert_allclose(results['stress'].get_array('stress'), reference.get_stress(voigt=False), atol=1e-10)
    frame = results['labelled'].get_ase()[0]
    assert frame.info['level_of_theory'].startswith('ase/EMT#')
    assert results['labelled'].level_of_theory == results['output_parameters']['level_of_theory']


@pytest.mark.skipif(importlib.util.find_spec('tblite') is None, reason='needs tblite')
def test_tblite_charged_molecule(ase_code):
    """GFN2-xTB via tblite on OH- (charge passed through `charge_kwarg`); no stress for a molecule."""
    atoms = molecule('OH')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    calculator = {
        'import_path': 'tblite.ase.TBLite',
        'kwargs': {'method': 'GFN2-xTB', 'verbosity': 0},
        'label': 'GFN2-xTB',
        'charge_kwarg': 'charge',
        'multiplicity_kwarg': 'multiplicity',
    }
    results, node = _run(ase_code, atoms, calculator, total_charge=orm.Int(-1))
    assert node.is_finished_ok, node.exit_message
    assert 'stress' not in results
    frame = results['labelled'].get_ase()[0]
    assert frame.info['total_charge'] == -1
    assert frame.get_forces().shape == (2, 3)


def test_import_failure_exit_code(ase_code):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    _, node = _run(ase_code, atoms, {'import_path': 'ase.calculators.nowhere.Nothing'})
    assert node.exit_status == LesAseLabelCalculation.exit_codes.ERROR_CALCULATOR_IMPORT.status
    assert 'ModuleNotFoundError' in node.exit_message


def test_charge_refused_without_keyword(fixture_code, generate_calc_job):
    """EMT cannot take a charge: a charged structure is refused before submission."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    inputs = {
        'code': fixture_code('les.ase_label'),
        'structure': orm.StructureData(ase=atoms),
        'calculator': orm.Dict({'import_path': 'ase.calculators.emt.EMT'}),
        'total_charge': orm.Int(1),
        'multiplicity': orm.Int(2),
    }
    with pytest.raises(ValueError, match='charge_kwarg'):
        generate_calc_job('les.ase_label', inputs)


def test_batch_isolates_a_failing_structure(ase_code):
    """A batch of three: Na (no EMT parameters) fails alone; the two Cu/Al cells keep EMT's own labels, by key."""
    copper = bulk('Cu', 'fcc', a=3.6, cubic=True)
    copper.rattle(0.05, seed=1)
    aluminium = bulk('Al', 'fcc', a=4.05, cubic=True)
    aluminium.rattle(0.05, seed=2)
    cells = {'a': copper, 'b': bulk('Na', 'bcc', a=4.23, cubic=True), 'c': aluminium}
    results, node = run_get_node(
        LesAseLabelCalculation,
        code=ase_code,
        structures={key: orm.StructureData(ase=atoms) for key, atoms in cells.items()},
        calculator=orm.Dict({'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'}),
        metadata={'options': OPTIONS},
    )
    assert node.exit_status == LesAseLabelCalculation.exit_codes.ERROR_SOME_STRUCTURES_FAILED.status
    assert sorted(results['labels']) == ['a', 'c']
    for key in ('a', 'c'):
        reference = cells[key].copy()
        reference.calc = EMT()
        frame = results['labels'][key].get_ase()[0]
        assert frame.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(frame.get_forces(), reference.get_forces(), atol=1e-8)
        # Provenance: the label hangs off the job whose input under the same key is the structure it labels.
        assert results['labels'][key].creator.uuid == node.uuid
        np.testing.assert_allclose(node.inputs.structures[key].get_ase().positions, frame.positions, atol=1e-8)
    entries = results['output_parameters']['structures']
    assert [entries[key]['exit_status'] for key in 'abc'] == [
        0,
        LesAseLabelCalculation.exit_codes.ERROR_CALCULATOR_FAILED.status,
        0,
    ]
    assert 'Na' in entries['b']['message'] or 'parameters' in entries['b']['message']
    assert results['output_parameters']['failed'] == ['b']


def test_batch_or_single_not_both(fixture_code, generate_calc_job):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    inputs = {
        'code': fixture_code('les.ase_label'),
        'structure': orm.StructureData(ase=atoms),
        'structures': {'a': orm.StructureData(ase=atoms)},
        'calculator': orm.Dict({'import_path': 'ase.calculators.emt.EMT'}),
    }
    with pytest.raises(ValueError, match='not both'):
        generate_calc_job('les.ase_label', inputs)
