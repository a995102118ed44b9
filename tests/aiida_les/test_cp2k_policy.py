"""Label-consistency policy and CP2K input/output helpers, without running CP2K or AiiDA."""

import subprocess
import sys

import pytest
from ase.build import bulk, molecule

from aiida_les.labelling.cp2k_handlers import Cp2kInputState
from aiida_les.labelling.cp2k_input import (
    build_cp2k_input,
    changed_computed_settings,
    level_of_theory,
    recursive_merge,
    render_cp2k_input,
)
from aiida_les.labelling.cp2k_output import parse_cp2k_output
from workchains.label.cp2k_base import LesCp2kBaseWorkChain


@pytest.fixture
def balanced_input():
    parameters = LesCp2kBaseWorkChain.get_protocol_inputs('balanced')['cp2k']['parameters']
    return parameters, build_cp2k_input(bulk('NaCl', 'rocksalt', a=5.64, cubic=True), parameters)


def _set(path: str, value) -> dict:
    update: dict = value
    for key in reversed(path.split('/')):
        update = {key: update}
    return update


@pytest.mark.parametrize(
    'path',
    [
        'FORCE_EVAL/DFT/SCF/MAX_SCF',
        'FORCE_EVAL/DFT/SCF/OT/MINIMIZER',
        'FORCE_EVAL/DFT/SCF/MIXING/ALPHA',
        'FORCE_EVAL/DFT/SCF/SCF_GUESS',
        'FORCE_EVAL/DFT/WFN_RESTART_FILE_NAME',
        'GLOBAL/WALLTIME',
    ],
)
def test_convergence_changes_allowed(balanced_input, path):
    _, sections = balanced_input
    assert changed_computed_settings(sections, recursive_merge(sections, _set(path, 'X'))) == []


@pytest.mark.parametrize(
    'path',
    [
        'FORCE_EVAL/DFT/MGRID/CUTOFF',
        'FORCE_EVAL/DFT/XC/XC_FUNCTIONAL/_',
        'FORCE_EVAL/DFT/XC/VDW_POTENTIAL/PAIR_POTENTIAL/TYPE',
        'FORCE_EVAL/DFT/SCF/SMEAR/ELEC_TEMP',
        'FORCE_EVAL/DFT/CHARGE',
        'FORCE_EVAL/DFT/BASIS_SET_FILE_NAME',
        'FORCE_EVAL/SUBSYS/CELL/A',
        'GLOBAL/RUN_TYPE',
    ],
)
def test_computed_changes_refused(balanced_input, path):
    _, sections = balanced_input
    state = Cp2kInputState(sections)
    assert not state.propose('bad', _set(path, 'X'))
    assert state.sections == sections
    assert state.refused == [{'name': 'bad', 'changed_computed_settings': [path]}]


def test_kind_basis_change_refused(balanced_input):
    """Repeated sections (KIND) are compared too: a different basis set for Na is refused."""
    _, sections = balanced_input
    kinds = [dict(kind) for kind in sections['FORCE_EVAL']['SUBSYS']['KIND']]
    kinds[1]['BASIS_SET'] = 'SZV-MOLOPT-SR-GTH'
    assert changed_computed_settings(sections, recursive_merge(sections, _set('FORCE_EVAL/SUBSYS/KIND', kinds)))


def test_applied_correction_records_changes(balanced_input):
    _, sections = balanced_input
    state = Cp2kInputState(sections)
    assert state.propose('more', _set('FORCE_EVAL/DFT/SCF/MAX_SCF', 200))
    assert state.applied == [{'name': 'more', 'changes': {'FORCE_EVAL/DFT/SCF/MAX_SCF': [50, 200]}}]


def test_level_of_theory_ignores_scf_only(balanced_input):
    parameters, _ = balanced_input
    tighter = recursive_merge(parameters, {'force_eval': {'DFT': {'SCF': {'EPS_SCF': 1e-8}}}})
    assert level_of_theory(tighter) == level_of_theory(parameters)
    finer = recursive_merge(parameters, {'force_eval': {'DFT': {'MGRID': {'CUTOFF': 500}}}})
    assert level_of_theory(finer) != level_of_theory(parameters)


def test_render_sections():
    text = render_cp2k_input(
        {'A': {'_': 'ON', 'X': True, 'Y': [1, 2], 'B': [{'_': 'H', 'Z': 1.5}, {'_': 'O'}], '_lines': ['raw line']}}
    )
    assert text.splitlines() == [
        '&A ON',
        '  X .TRUE.',
        '  Y 1',
        '  Y 2',
        '  &B H',
        '    Z 1.5',
        '  &END B',
        '  &B O',
        '  &END B',
        '  raw line',
        '&END A',
    ]


def test_parse_unrestricted_mulliken():
    """UKS Mulliken tables carry alpha/beta populations; the net charge is the sixth column."""
    text = '\n'.join(
        [
            ' Mulliken Population Analysis',
            ' #  Atom  Element  Kind  Atomic population (alpha,beta) Net charge  Spin moment',
            '       1     O        1          3.9          3.1          -1.0         0.8',
            '       2     H        2          0.5          0.4           0.1         0.1',
            ' # Total charge and spin         4.4          3.5          -0.9         0.9',
        ]
    )
    assert parse_cp2k_output(text)['mulliken_charges'] == [-1.0, 0.1]


def test_molecule_box_stable_under_small_displacements():
    """Whole-Å boxes: a finite-difference displacement keeps the same cell (and grid)."""
    parameters = LesCp2kBaseWorkChain.get_protocol_inputs('balanced')['cp2k']['parameters']
    atoms = molecule('H2O')
    atoms.pbc = False
    displaced = atoms.copy()
    displaced.positions[1, 1] += 0.005  # the y extent (1.53 Å) sits well inside a whole-Å box
    cell = build_cp2k_input(atoms, parameters)['FORCE_EVAL']['SUBSYS']['CELL']
    assert build_cp2k_input(displaced, parameters)['FORCE_EVAL']['SUBSYS']['CELL'] == cell


def test_in_job_modules_do_not_import_aiida():
    """The labelling programs run inside the job: none of their modules may import aiida."""
    code = (
        'import sys\n'
        'import aiida_les.labelling.cp2k_runner, aiida_les.labelling.ase_runner, aiida_les.labelling.validation\n'
        'print(",".join(sorted(m for m in sys.modules if m == "aiida" or m.startswith("aiida."))))\n'
    )
    completed = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ''


def test_terminate_stops_only_its_own_process(tmp_path):
    """Custodian's Cp2kJob.terminate runs `killall`; ours stops the job's own process and nothing else."""
    from aiida_les.labelling.cp2k_handlers import Cp2kJob

    command = [sys.executable, '-c', 'import time; time.sleep(60)']
    bystander = subprocess.Popen(command)
    try:
        job = Cp2kJob(command)
        job.state = Cp2kInputState({'GLOBAL': {'PROJECT': 'aiida'}})
        process = job.run(tmp_path)
        job.terminate(tmp_path)
        assert process.poll() is not None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
