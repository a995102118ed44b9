"""Step-level tests of :class:`workchains.train.base.LesTrainBaseWorkChain`: handlers on fake finished jobs."""

import io
import pathlib

import pytest
from aiida import orm
from aiida.engine import ProcessHandlerReport

from aiida_les.calculations.train import LesTrainCalculation
from aiida_les.data.model import LesModelData
from workchains.train.base import LesTrainBaseWorkChain

ENTRY_POINT = 'les.train.base'
EXIT = LesTrainCalculation.exit_codes
CONFIG = {'epochs': 2, 'lr': 0.001, 'model': {'cutoff': 4.0, 'n_features': 8}}


@pytest.fixture
def generate_workchain_train(generate_workchain, generate_dataset, fixture_code, generate_finished_calc):
    """Return a factory: a set-up workchain whose first child finished with ``exit_status`` and ``outputs``."""

    def factory(exit_status: int | None = None, outputs: dict | None = None, inputs: dict | None = None):
        process_inputs = {
            'dataset': generate_dataset(),
            'train': {'code': fixture_code('les.train'), 'config': orm.Dict(CONFIG)},
            **(inputs or {}),
        }
        process = generate_workchain(ENTRY_POINT, process_inputs)
        process.setup()
        if exit_status is not None:
            process.ctx.children = [generate_finished_calc(exit_status, outputs)]
            process.ctx.iteration = 1
        return process

    return factory


def test_setup(generate_workchain_train):
    process = generate_workchain_train()
    assert process.ctx.inputs.config.get_dict() == CONFIG
    assert 'dataset' in process.ctx.inputs


def test_invalid_config_refused_at_launch(generate_workchain, generate_dataset, fixture_code):
    inputs = {'dataset': generate_dataset(), 'train': {'code': fixture_code('les.train'), 'config': {'epochs': -1}}}
    with pytest.raises(ValueError, match='epochs must be > 0, got -1'):
        generate_workchain(ENTRY_POINT, inputs)


def test_handle_out_of_walltime(generate_workchain_train):
    """Resume from the checkpoint: the stopped run's remote folder becomes ``parent_folder``."""
    process = generate_workchain_train(EXIT.ERROR_OUT_OF_WALLTIME.status)
    node = process.ctx.children[-1]
    report = process.handle_out_of_walltime(node)
    assert isinstance(report, ProcessHandlerReport)
    assert report.do_break
    assert report.exit_code.status == 0
    assert process.ctx.inputs.parent_folder.uuid == node.outputs.remote_folder.uuid
    assert process.inspect_process().status == 0  # handled: restart


def test_handle_out_of_walltime_drops_parent_model(generate_workchain_train, tmp_path):
    (tmp_path / 'model.pt').write_bytes(b'bytes')
    parent = LesModelData(tmp_path / 'model.pt')
    process = generate_workchain_train(EXIT.ERROR_OUT_OF_WALLTIME.status)
    process.ctx.inputs.parent_model = parent
    process.handle_out_of_walltime(process.ctx.children[-1])
    assert 'parent_model' not in process.ctx.inputs
    assert LesTrainCalculation.check_config(process.ctx.inputs) is None


def test_handle_nan_loss(generate_workchain_train):
    """Lower the learning rate by ``nan_lr_factor`` (0.1), keep min_lr below it and start afresh."""
    process = generate_workchain_train(EXIT.ERROR_NAN_LOSS.status)
    process.ctx.inputs.parent_folder = process.ctx.children[-1].outputs.remote_folder
    report = process.handle_nan_loss(process.ctx.children[-1])
    assert report.exit_code.status == 0
    config = process.ctx.inputs.config.get_dict()
    assert config['lr'] == pytest.approx(1.0e-4)
    assert config['min_lr'] == pytest.approx(1.0e-6)
    assert 'parent_folder' not in process.ctx.inputs
    assert LesTrainCalculation.check_config(process.ctx.inputs) is None
    assert process.inspect_process().status == 0


def test_handle_nan_loss_floor(generate_workchain_train):
    process = generate_workchain_train(EXIT.ERROR_NAN_LOSS.status)
    process.ctx.inputs.config = orm.Dict({**CONFIG, 'lr': 5.0e-7})
    report = process.handle_nan_loss(process.ctx.children[-1])
    assert report.exit_code == process.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE


@pytest.mark.parametrize(
    'exit_code',
    [EXIT.ERROR_INVALID_CONFIG, EXIT.ERROR_INVALID_INPUT_DATA, EXIT.ERROR_INCOMPATIBLE_MODEL],
)
def test_unrecoverable(generate_workchain_train, exit_code):
    process = generate_workchain_train(exit_code.status)
    result = process.inspect_process()
    assert result == LesTrainBaseWorkChain.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE


def test_unhandled_failure(generate_workchain_train):
    """A failure no handler knows (here: an unreadable metrics file) aborts with the restart workchain's 402."""
    process = generate_workchain_train(EXIT.ERROR_METRICS_FILE_READ.status)
    assert process.inspect_process() == LesTrainBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE


def test_scheduler_walltime_handler_off_by_default(generate_workchain_train):
    process = generate_workchain_train(EXIT.ERROR_SCHEDULER_OUT_OF_WALLTIME.status)
    assert process.inspect_process() == LesTrainBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE


def test_scheduler_walltime_handler_enabled(generate_workchain_train):
    inputs = {'handler_overrides': {'handle_scheduler_out_of_walltime': {'enabled': True}}}
    process = generate_workchain_train(EXIT.ERROR_SCHEDULER_OUT_OF_WALLTIME.status, inputs=inputs)
    assert process.inspect_process().status == 0
    assert 'parent_folder' in process.ctx.inputs


def _model_and_metrics(forces_rmse: float) -> dict:
    model = LesModelData(io.BytesIO(b'trained model bytes'), filename='model.pt')
    metrics = orm.Dict({'final': {'valid': {'forces_rmse': forces_rmse}}})
    return {'model': model, 'metrics': metrics}


def test_sanity_check_continues_training(generate_workchain_train):
    """Validation force RMSE above the threshold: continue from the trained model with twice the epochs."""
    outputs = _model_and_metrics(forces_rmse=250.0)
    process = generate_workchain_train(0, outputs, inputs={'max_valid_forces_rmse': 100.0})
    assert process.inspect_process().status == 0
    assert process.ctx.inputs.config['epochs'] == 4
    assert process.ctx.inputs.parent_model.uuid == outputs['model'].uuid
    assert process.ctx.is_finished is False


@pytest.mark.parametrize(('threshold', 'rmse'), [(None, 250.0), (300.0, 250.0)])
def test_sanity_check_passes(generate_workchain_train, threshold, rmse):
    inputs = {} if threshold is None else {'max_valid_forces_rmse': threshold}
    process = generate_workchain_train(0, _model_and_metrics(rmse), inputs=inputs)
    assert process.inspect_process() is None
    assert process.ctx.is_finished is True


@pytest.mark.parametrize('exit_code', ['ERROR_OUTPUT_STDOUT_INCOMPLETE', 'ERROR_MODEL_FILE_MISSING'])
def test_handle_job_interrupted_resumes_from_a_surviving_checkpoint(generate_workchain_train, exit_code):
    """A killed job whose working directory kept its checkpoint is resumed from it, not trained again."""
    process = generate_workchain_train(getattr(EXIT, exit_code).status)
    node = process.ctx.children[-1]
    remote = node.outputs.remote_folder
    (pathlib.Path(remote.get_remote_path()) / LesTrainCalculation._CHECKPOINT_FILENAME).write_bytes(b'checkpoint')
    report = process.handle_job_interrupted(node)
    assert report.do_break
    assert report.exit_code.status == 0
    assert process.ctx.inputs.parent_folder.uuid == remote.uuid


def test_handle_job_interrupted_without_checkpoint_trains_again(generate_workchain_train):
    """Nothing survived in the job's folder: the same inputs run again (no ``parent_folder``)."""
    process = generate_workchain_train(EXIT.ERROR_OUTPUT_STDOUT_MISSING.status)
    report = process.handle_job_interrupted(process.ctx.children[-1])
    assert report.do_break
    assert report.exit_code.status == 0
    assert 'parent_folder' not in process.ctx.inputs
    assert process.inspect_process().status == 0  # handled: restart
