"""Step-level tests of :class:`workchains.md.base.LesMdBaseWorkChain`: handlers on fake finished jobs."""

import io

import pytest
from aiida import orm

from aiida_les.calculations.md import LesMdCalculation
from aiida_les.data.model import LesModelData
from workchains.md.base import LesMdBaseWorkChain

ENTRY_POINT = 'les.md.base'
EXIT = LesMdCalculation.exit_codes
CONFIG = {'timestep': 1.0, 'steps': 100, 'write_every': 10, 'temperature': 500.0}


@pytest.fixture
def generate_workchain_md(generate_workchain, generate_structure, fixture_code, generate_calc_job_node):
    """Return a factory: a set-up workchain whose first child finished with ``exit_status``."""

    def factory(exit_status: int | None = None, config: dict | None = None):
        from plumpy import ProcessState

        models = {'m0': LesModelData(io.BytesIO(b'model zero'), filename='model.pt')}
        inputs = {
            'structure': generate_structure('NaCl'),
            'md': {'code': fixture_code('les.md'), 'config': orm.Dict(config or CONFIG), 'models': models},
        }
        process = generate_workchain(ENTRY_POINT, inputs)
        process.setup()
        if exit_status is not None:
            node = generate_calc_job_node('les.md')
            node.set_process_state(ProcessState.FINISHED)
            node.set_exit_status(exit_status)
            process.ctx.children = [node]
            process.ctx.iteration = 1
        return process

    return factory


def test_invalid_config_refused_at_launch(generate_workchain, generate_structure, fixture_code):
    models = {'m0': LesModelData(io.BytesIO(b'model zero'), filename='model.pt')}
    md = {'code': fixture_code('les.md'), 'config': {'ensemble': 'npt', 'timestep': 0.0}, 'models': models}
    with pytest.raises(ValueError, match='timestep must be > 0, got 0.0'):
        generate_workchain(ENTRY_POINT, {'structure': generate_structure('NaCl'), 'md': md})


def test_handle_md_unstable(generate_workchain_md):
    """Half the time step, twice the steps and frame interval: same simulated time (100 fs), same frames."""
    process = generate_workchain_md(EXIT.ERROR_MD_UNSTABLE.status)
    assert process.inspect_process().status == 0
    config = process.ctx.inputs.config.get_dict()
    assert config['timestep'] == pytest.approx(0.5)
    assert config['steps'] == 200
    assert config['write_every'] == 20
    assert config['temperature'] == 500.0
    assert config['timestep'] * config['steps'] == pytest.approx(CONFIG['timestep'] * CONFIG['steps'])


def test_handle_md_unstable_default_timestep(generate_workchain_md):
    """Without a timestep in the config the MDConfig default (0.5 fs) is the one halved."""
    process = generate_workchain_md(EXIT.ERROR_MD_UNSTABLE.status, config={'steps': 10})
    process.inspect_process()
    assert process.ctx.inputs.config['timestep'] == pytest.approx(0.25)


def test_handle_md_unstable_floor(generate_workchain_md):
    process = generate_workchain_md(EXIT.ERROR_MD_UNSTABLE.status, config={**CONFIG, 'timestep': 0.08})
    assert process.inspect_process() == LesMdBaseWorkChain.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE


@pytest.mark.parametrize('exit_code', [EXIT.ERROR_INCOMPATIBLE_MODEL, EXIT.ERROR_DEVICE_UNAVAILABLE])
def test_unrecoverable(generate_workchain_md, exit_code):
    process = generate_workchain_md(exit_code.status)
    assert process.inspect_process() == LesMdBaseWorkChain.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE


def test_success_finishes(generate_workchain_md):
    process = generate_workchain_md(0)
    assert process.inspect_process() is None
    assert process.ctx.is_finished is True


@pytest.mark.parametrize('exit_code', ['ERROR_OUTPUT_STDOUT_INCOMPLETE', 'ERROR_TRAJECTORY_FILE_MISSING'])
def test_handle_job_interrupted_runs_again(generate_workchain_md, exit_code):
    """A killed job (or one whose files were deleted) runs again with unchanged inputs."""
    process = generate_workchain_md(getattr(EXIT, exit_code).status)
    before = process.ctx.inputs.config.get_dict()
    assert process.inspect_process().status == 0  # handled: restart
    assert process.ctx.inputs.config.get_dict() == before
