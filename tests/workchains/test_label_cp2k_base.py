"""les.cp2k.base: protocol builders (regression), override checks, restart handlers on fake children, one real run."""

import os
import shutil
import sys

import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine import ProcessHandlerReport, run_get_node
from ase.build import molecule
from plumpy import ProcessState

from aiida_les.calculations.cp2k import LesCp2kCalculation
from workchains.label.cp2k_base import LesCp2kBaseWorkChain

LES_CP2K = shutil.which('les-cp2k') or shutil.which('les-cp2k', path=os.path.dirname(sys.executable))


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_builder_from_protocol(fixture_code, generate_structure, serialize_builder, data_regression, protocol):
    structure = generate_structure('H2O')
    builder = LesCp2kBaseWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), structure, protocol)
    data_regression.check(serialize_builder(builder))


def test_builder_overrides_and_options(fixture_code, generate_structure):
    overrides = {'max_iterations': 2, 'cp2k': {'settings': {'max_corrections': 1}}}
    builder = LesCp2kBaseWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k'),
        generate_structure('NaCl'),
        'fast',
        overrides=overrides,
        options={'max_wallclock_seconds': 120},
        total_charge=0,
        multiplicity=1,
    )
    assert builder.max_iterations.value == 2
    assert builder.cp2k.settings.get_dict() == {'max_corrections': 1}
    assert builder.cp2k.metadata.options['max_wallclock_seconds'] == 120
    assert builder.cp2k.parameters['protocol'] == 'fast'


@pytest.mark.parametrize(
    ('overrides', 'bad_key'),
    [({'max_iteration': 2}, 'max_iteration'), ({'cp2k': {'parameter': {}}}, 'cp2k.parameter')],
)
def test_unknown_override_keys_refused(fixture_code, generate_structure, overrides, bad_key):
    with pytest.raises(ValueError, match=f'Unknown override key `{bad_key}`'):
        LesCp2kBaseWorkChain.get_builder_from_protocol(
            fixture_code('les.cp2k'), generate_structure('H2O'), 'fast', overrides=overrides
        )


def test_unknown_protocol_refused(fixture_code, generate_structure):
    with pytest.raises(ValueError, match='Unknown protocol `cheap`'):
        LesCp2kBaseWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), generate_structure('H2O'), 'cheap')


def test_available_protocols():
    assert set(LesCp2kBaseWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    assert LesCp2kBaseWorkChain.get_default_protocol() == 'balanced'


@pytest.fixture
def base_workchain(fixture_code, generate_structure, generate_workchain, generate_calc_job_node):
    """Return a factory for an instantiated (not run) base workchain with one failed fake child."""

    def factory(exit_code):
        builder = LesCp2kBaseWorkChain.get_builder_from_protocol(
            fixture_code('les.cp2k'), generate_structure('H2O'), 'fast', options={'max_wallclock_seconds': 600}
        )
        process = generate_workchain('les.cp2k.base', builder._inputs(prune=True))
        process.setup()
        node = generate_calc_job_node('les.cp2k')
        node.set_process_state(ProcessState.FINISHED)
        node.set_exit_status(exit_code.status)
        node.set_exit_message(exit_code.message)
        process.ctx.children = [node]
        return process, node

    return factory


def test_handle_out_of_walltime(base_workchain):
    process, node = base_workchain(LesCp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME)
    report = process.handle_out_of_walltime(node)
    assert isinstance(report, ProcessHandlerReport)
    assert report.do_break
    assert report.exit_code.status == 0
    assert process.ctx.inputs.metadata.options['max_wallclock_seconds'] == 1200


def test_handle_out_of_memory(base_workchain):
    process, node = base_workchain(LesCp2kCalculation.exit_codes.ERROR_OUT_OF_MEMORY)
    report = process.handle_out_of_memory(node)
    assert report.exit_code.status == 0
    assert process.ctx.inputs.metadata.options['resources']['num_machines'] == 2


@pytest.mark.parametrize('name', ['ERROR_SCF_NOT_CONVERGED', 'ERROR_SCF_CORRECTION_REFUSED'])
def test_handle_scf_unrecoverable(base_workchain, name):
    process, node = base_workchain(getattr(LesCp2kCalculation.exit_codes, name))
    report = process.handle_scf_unrecoverable(node)
    assert report.exit_code == LesCp2kBaseWorkChain.exit_codes.ERROR_SCF_UNRECOVERABLE
    # inspect_process routes the failed child to this handler and stops.
    process.ctx.children = [node]
    result = process.inspect_process()
    assert result == LesCp2kBaseWorkChain.exit_codes.ERROR_SCF_UNRECOVERABLE


@pytest.mark.parametrize(
    'name',
    [
        'ERROR_OUTPUT_STDOUT_MISSING',
        'ERROR_OUTPUT_STDOUT_READ',
        'ERROR_OUTPUT_STDOUT_INCOMPLETE',
        'ERROR_CORRECTIONS_FILE_MISSING',
    ],
)
def test_handle_job_interrupted(base_workchain, name):
    """A killed job or one whose files vanished is run again with unchanged inputs (not an unhandled failure)."""
    process, node = base_workchain(getattr(LesCp2kCalculation.exit_codes, name))
    before = process.ctx.inputs.metadata.options
    report = process.handle_job_interrupted(node)
    assert report.do_break
    assert report.exit_code.status == 0
    # Through inspect_process: handled (status 0, restart), where an unhandled failure would abort with 402.
    assert process.inspect_process().status == 0
    assert process.ctx.unhandled_failure is False
    assert process.ctx.inputs.metadata.options == before
    assert process.should_run_process()


def test_inspect_process_success(base_workchain, generate_calc_job_node):
    process, node = base_workchain(LesCp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME)
    ok = generate_calc_job_node('les.cp2k')
    ok.set_process_state(ProcessState.FINISHED)
    ok.set_exit_status(0)
    params = orm.Dict({'energy': -1.0}).store()
    params.base.links.add_incoming(ok, link_type=LinkType.CREATE, link_label='output_parameters')
    process.ctx.children = [ok]
    assert process.inspect_process() is None


@pytest.mark.skipif(LES_CP2K is None or shutil.which('cp2k.psmp') is None, reason='needs les-cp2k and cp2k.psmp')
def test_unrecoverable_scf_end_to_end(aiida_code_installed):
    """A real run whose SCF cannot converge with the corrections allowed stops with ERROR_SCF_UNRECOVERABLE."""
    code = aiida_code_installed(label='les-cp2k-real', default_calc_job_plugin='les.cp2k', filepath_executable=LES_CP2K)
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    ladder = [{'name': 'one_more_step', 'set': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 2}}}}}]
    overrides = {
        'cp2k': {
            'parameters': {'force_eval': {'DFT': {'SCF': {'MAX_SCF': 1}}}},
            'settings': {'max_corrections': 1, 'ladder': ladder},
        }
    }
    builder = LesCp2kBaseWorkChain.get_builder_from_protocol(
        code, orm.StructureData(ase=atoms), 'fast', overrides=overrides, options={'max_wallclock_seconds': 300}
    )
    _, node = run_get_node(builder)
    assert node.exit_status == LesCp2kBaseWorkChain.exit_codes.ERROR_SCF_UNRECOVERABLE.status, [
        (c.exit_status, c.exit_message) for c in node.called
    ]
    child = node.called[0]
    assert child.exit_status == LesCp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED.status
    assert child.outputs.output_parameters['corrections'][0]['name'] == 'one_more_step'


def test_bad_input_refused_at_workchain_level(fixture_code, generate_workchain):
    """The CalcJob's validator travels with the exposed inputs: a doublet water is refused before anything runs."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    builder = LesCp2kBaseWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k'), orm.StructureData(ase=atoms), 'fast', multiplicity=2
    )
    with pytest.raises(ValueError, match='expected an odd multiplicity'):
        generate_workchain('les.cp2k.base', builder._inputs(prune=True))
