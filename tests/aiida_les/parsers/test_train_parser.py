"""Tests for :class:`aiida_les.parsers.train.LesTrainParser` on output folders recorded from real ``les-train`` runs."""

import pytest

from aiida_les.calculations.train import LesTrainCalculation
from aiida_les.data.model import LesModelData

ENTRY_POINT = 'les.train'
EXIT = LesTrainCalculation.exit_codes


def test_default(parse_fixture, data_regression, rounded):
    results, calcfunction = parse_fixture(ENTRY_POINT, 'default')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    assert sorted(results) == ['learning_curve', 'metrics', 'model']
    model = results['model']
    assert isinstance(model, LesModelData)
    assert model.base.attributes.get('species') == ['Na', 'Cl']  # atomic numbers 11, 17 in the file
    assert model.model_config['cutoff'] == 4.0
    assert len(model.sha256) == 64
    # Trained outside a campaign and (in this recorded folder) without a dataset node: recorded as unknown.
    assert (model.training_dataset_uuid, model.level_of_theory, model.campaign_uuid) == (None, None, None)
    assert results['learning_curve'].get_content(mode='rb')[:8] == b'\x89PNG\r\n\x1a\n'
    metrics = results['metrics'].get_dict()
    data_regression.check(
        rounded({'status': metrics['status'], 'final': metrics['final'], 'model_files': metrics['model_files']})
    )


def test_committee(parse_fixture):
    results, calcfunction = parse_fixture(ENTRY_POINT, 'committee')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    assert 'model' not in results
    models = results['models']
    assert sorted(models) == ['member_0', 'member_1']
    assert models['member_0'].sha256 != models['member_1'].sha256


def test_out_of_walltime_with_checkpoint(parse_fixture, tmp_path):
    """400 only when the checkpoint reached the temporary retrieved folder; the metrics so far are attached."""
    (tmp_path / 'checkpoint.pt').write_bytes(b'checkpoint bytes')
    results, calcfunction = parse_fixture(ENTRY_POINT, 'walltime', temporary_folder=tmp_path)
    assert calcfunction.exit_status == EXIT.ERROR_OUT_OF_WALLTIME.status
    assert results['metrics']['status'] == 'walltime'


def test_out_of_walltime_without_checkpoint(parse_fixture, tmp_path):
    _, calcfunction = parse_fixture(ENTRY_POINT, 'walltime', temporary_folder=tmp_path)
    assert calcfunction.exit_status == EXIT.ERROR_OUT_OF_WALLTIME_NO_CHECKPOINT.status


@pytest.mark.parametrize(
    ('case', 'exit_code', 'message'),
    [
        ('nan_loss', EXIT.ERROR_NAN_LOSS, 'NaN'),
        ('invalid_config', EXIT.ERROR_INVALID_CONFIG, "unknown keys ['learning_rate']"),
        ('killed', EXIT.ERROR_OUTPUT_STDOUT_INCOMPLETE, 'incomplete'),
        ('no_model', EXIT.ERROR_MODEL_FILE_MISSING, 'model file'),
    ],
)
def test_failures(parse_fixture, case, exit_code, message):
    _, calcfunction = parse_fixture(ENTRY_POINT, case)
    assert calcfunction.exit_status == exit_code.status
    assert message in calcfunction.exit_message


def test_stdout_missing(parse_fixture, generate_calc_job_node, tmp_path):
    from aiida.plugins import ParserFactory

    (tmp_path / 'les.err').write_text('')
    node = generate_calc_job_node(ENTRY_POINT, tmp_path)
    _, calcfunction = ParserFactory(ENTRY_POINT).parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == EXIT.ERROR_OUTPUT_STDOUT_MISSING.status


def test_traceback_is_unexpected_failure(generate_calc_job_node, tmp_path):
    """A Python traceback without the one-line error report is an unclassified failure (350)."""
    from aiida.plugins import ParserFactory

    (tmp_path / 'les.out').write_text('')
    (tmp_path / 'les.err').write_text('Traceback (most recent call last):\n  File "x"\nRuntimeError: boom\n')
    node = generate_calc_job_node(ENTRY_POINT, tmp_path)
    _, calcfunction = ParserFactory(ENTRY_POINT).parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == EXIT.ERROR_UNEXPECTED_FAILURE.status


def test_killed_by_scheduler_keeps_scheduler_exit_code(parse_fixture):
    """A job the scheduler killed at its walltime (120) keeps that diagnosis: the program left no verdict."""
    _, calcfunction = parse_fixture(ENTRY_POINT, 'killed', scheduler_exit_status=120)
    assert calcfunction.exit_status == 120


def test_usage_error_is_unexpected_failure(generate_calc_job_node, tmp_path):
    """Argparse refusing the command line (exit status 2) is a plugin bug: 350, with argparse's message."""
    from aiida.plugins import ParserFactory

    (tmp_path / 'les.out').write_text('')
    (tmp_path / 'les.err').write_text(
        'usage: les-train [-h] [--resume] config\nles-train: error: unrecognized arguments: --restart\n'
    )
    node = generate_calc_job_node(ENTRY_POINT, tmp_path)
    _, calcfunction = ParserFactory(ENTRY_POINT).parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == EXIT.ERROR_UNEXPECTED_FAILURE.status
    assert 'unrecognized arguments: --restart' in calcfunction.exit_message
