"""les.cp2k CalcJob: the input files it writes (regression) and the inputs it refuses before submission."""

import json

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk, molecule

from workchains.label.cp2k_base import LesCp2kBaseWorkChain


def _parameters(protocol: str) -> orm.Dict:
    return orm.Dict(LesCp2kBaseWorkChain.get_protocol_inputs(protocol)['cp2k']['parameters'])


def _inputs(fixture_code, structure, protocol='fast', **kwargs):
    inputs = {
        'code': fixture_code('les.cp2k'),
        'structure': structure,
        'parameters': _parameters(protocol),
        'metadata': {'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 2}}},
    }
    inputs.update(kwargs)
    return inputs


@pytest.mark.parametrize(('name', 'protocol'), [('H2O', 'fast'), ('NaCl', 'fast'), ('H2O', 'balanced')])
def test_input_files(fixture_code, generate_calc_job, generate_structure, file_regression, name, protocol):
    """The rendered CP2K input is stable; the runner settings carry the command built from the options."""
    folder, calc_info = generate_calc_job('les.cp2k', _inputs(fixture_code, generate_structure(name), protocol))
    with open(folder.get_abs_path('les_cp2k.json')) as handle:
        settings = json.load(handle)
    assert settings['cp2k_command'] == ['mpirun', '-np', '2', 'cp2k.psmp']
    assert settings['max_corrections'] == 5
    assert sorted(calc_info.retrieve_list) == sorted(
        ['aiida.inp', 'aiida.out', 'corrections.json', 'cp2k.err', 'les_cp2k.log']
    )
    with open(folder.get_abs_path('aiida.inp')) as handle:
        file_regression.check(handle.read(), extension='.inp')


def test_mpi_launcher_option(fixture_code, generate_calc_job, generate_structure):
    """The CP2K binary and MPI launcher come from the options; an empty launcher runs CP2K directly."""
    inputs = _inputs(fixture_code, generate_structure('H2O'))
    inputs['metadata']['options'].update({'mpi_launcher': '', 'cp2k_executable': '/opt/cp2k/cp2k.ssmp'})
    folder, _ = generate_calc_job('les.cp2k', inputs)
    with open(folder.get_abs_path('les_cp2k.json')) as handle:
        assert json.load(handle)['cp2k_command'] == ['/opt/cp2k/cp2k.ssmp']


def _validate(fixture_code, generate_calc_job, structure, protocol='fast', **kwargs):
    with pytest.raises(ValueError) as excinfo:
        generate_calc_job('les.cp2k', _inputs(fixture_code, structure, protocol, **kwargs))
    return str(excinfo.value)


def test_refuses_elements_without_basis(fixture_code, generate_calc_job, generate_structure):
    """The stringent (TZV2P) protocol has no basis set for Na: refused before submission."""
    message = _validate(fixture_code, generate_calc_job, generate_structure('NaCl'), 'stringent')
    assert "no basis set/pseudopotential for elements ['Na']" in message


def test_refuses_overlapping_atoms(fixture_code, generate_calc_job):
    atoms = molecule('H2O')
    atoms.positions[1] = atoms.positions[0] + [0.0, 0.0, 0.2]
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    message = _validate(fixture_code, generate_calc_job, orm.StructureData(ase=atoms))
    assert 'Overlapping atoms: atoms 0 and 1 are 0.200 Å apart' in message


def test_refuses_small_cell(fixture_code, generate_calc_job):
    atoms = bulk('NaCl', 'rocksalt', a=5.64)  # primitive fcc cell: perpendicular width 3.26 Å
    message = _validate(fixture_code, generate_calc_job, orm.StructureData(ase=atoms))
    assert 'Cell too small' in message


def test_refuses_mixed_periodicity(fixture_code, generate_calc_job):
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.pbc = [True, True, False]
    assert 'fully periodic or non-periodic' in _validate(fixture_code, generate_calc_job, orm.StructureData(ase=atoms))


@pytest.mark.parametrize(
    ('charge', 'multiplicity', 'expected'),
    [(0, 2, 'expected an odd multiplicity'), (1, 1, 'expected an even multiplicity'), (0, 0, 'must be >= 1')],
)
def test_refuses_charge_multiplicity_mismatch(
    fixture_code, generate_calc_job, generate_structure, charge, multiplicity, expected
):
    """Water has 10 electrons: a doublet is impossible; H2O+ (9 electrons) cannot be a singlet."""
    message = _validate(
        fixture_code,
        generate_calc_job,
        generate_structure('H2O'),
        total_charge=orm.Int(charge),
        multiplicity=orm.Int(multiplicity),
    )
    assert expected in message


def test_accepts_radical_cation(fixture_code, generate_calc_job, generate_structure):
    """H2O+ doublet is valid and switches on UKS."""
    inputs = _inputs(fixture_code, generate_structure('H2O'), total_charge=orm.Int(1), multiplicity=orm.Int(2))
    folder, _ = generate_calc_job('les.cp2k', inputs)
    with open(folder.get_abs_path('aiida.inp')) as handle:
        text = handle.read()
    assert 'CHARGE 1' in text
    assert 'MULTIPLICITY 2' in text
    assert 'UKS .TRUE.' in text


def test_refuses_unknown_parameter_keys(fixture_code, generate_calc_job, generate_structure):
    parameters = _parameters('fast').get_dict()
    parameters['cutoff'] = 300
    message = _validate(fixture_code, generate_calc_job, generate_structure('H2O'), parameters=orm.Dict(parameters))
    assert "Unknown keys ['cutoff']" in message


def test_molecule_box_fits_martyna_tuckerman(fixture_code, generate_calc_job, generate_structure):
    """Non-periodic DFT uses the MT solver with a box at least twice the molecular extent plus vacuum."""
    structure = generate_structure('H2O')
    folder, _ = generate_calc_job('les.cp2k', _inputs(fixture_code, structure, 'balanced'))
    with open(folder.get_abs_path('aiida.inp')) as handle:
        text = handle.read()
    abc = next(line for line in text.splitlines() if line.strip().startswith('ABC')).split()[1:]
    extent = np.ptp(structure.get_ase().positions, axis=0)
    assert np.all(np.array(abc, dtype=float) >= 2 * extent)
    assert 'POISSON_SOLVER MT' in text
    assert 'PERIODIC NONE' in text


def test_response_labels_switch_on_berry_phase_and_born_charges(fixture_code, generate_calc_job, generate_structure):
    """`bec` prints the Berry-phase dipole of a crystal, hands the displacement to the runner, retrieves bec.json."""
    parameters = _parameters('fast').get_dict()
    folder, _ = generate_calc_job('les.cp2k', _inputs(fixture_code, generate_structure('NaCl')))
    with open(folder.get_abs_path('aiida.inp')) as handle:
        assert 'MOMENTS' not in handle.read()  # off by default: the fast campaign input is unchanged
    parameters.update(bec=True, bec_displacement=0.005)
    inputs = _inputs(fixture_code, generate_structure('NaCl'), parameters=orm.Dict(parameters))
    folder, calc_info = generate_calc_job('les.cp2k', inputs)
    with open(folder.get_abs_path('aiida.inp')) as handle:
        text = handle.read()
    moments = text[text.index('&MOMENTS') : text.index('&END MOMENTS')]
    assert 'PERIODIC .TRUE.' in moments
    assert 'REFERENCE ZERO' in moments
    with open(folder.get_abs_path('les_cp2k.json')) as handle:
        assert json.load(handle)['bec'] == {'displacement': 0.005}
    assert {'bec.json', 'bec_farm.out'} <= set(calc_info.retrieve_list)


@pytest.mark.parametrize(
    ('update', 'expected'),
    [
        ({'bec': 'yes'}, '`parameters.bec` must be true or false'),
        ({'bec': True, 'bec_displacement': 0.5}, '`parameters.bec_displacement` must be a number in (0, 0.1]'),
        ({'dipole': 1}, '`parameters.dipole` must be true or false'),
    ],
)
def test_refuses_bad_response_switches(fixture_code, generate_calc_job, generate_structure, update, expected):
    parameters = {**_parameters('fast').get_dict(), **update}
    message = _validate(fixture_code, generate_calc_job, generate_structure('H2O'), parameters=orm.Dict(parameters))
    assert expected in message


def test_refuses_born_charges_of_charged_structure(fixture_code, generate_calc_job, generate_structure):
    """The dipole of an ion depends on the origin: finite-difference Born charges are refused before submission."""
    parameters = {**_parameters('fast').get_dict(), 'bec': True}
    message = _validate(
        fixture_code,
        generate_calc_job,
        generate_structure('H2O'),
        parameters=orm.Dict(parameters),
        total_charge=orm.Int(1),
        multiplicity=orm.Int(2),
    )
    assert 'need a neutral structure' in message


def test_response_switches_pass_through_the_label_protocol(fixture_code, generate_structure):
    """les.label (and so a campaign's `label` overrides) hands `bec` to every les.cp2k job; off by default."""
    from workchains.label.label import LesLabelWorkChain

    structures = [generate_structure('H2O')]
    builder = LesLabelWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), structures, protocol='fast')
    assert builder.cp2k.cp2k.parameters['bec'] is False
    assert builder.cp2k.cp2k.parameters['dipole'] is False
    overrides = {'cp2k': {'cp2k': {'parameters': {'bec': True}}}}
    builder = LesLabelWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k'), structures, protocol='fast', overrides=overrides
    )
    assert builder.cp2k.cp2k.parameters['bec'] is True
    assert builder.cp2k.cp2k.parameters['method'] == 'GFN1-xTB'
