"""Tests for :class:`aiida_les.parsers.evaluate.LesEvaluateParser` on folders recorded from real ``les-eval`` runs."""

import pytest

from aiida_les.calculations.evaluate import LesEvaluateCalculation
from aiida_les.data.dataset import LesDatasetData

ENTRY_POINT = 'les.evaluate'
EXIT = LesEvaluateCalculation.exit_codes


def test_default(parse_fixture, data_regression, rounded):
    results, calcfunction = parse_fixture(ENTRY_POINT, 'default')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    predictions = results['predictions']
    assert isinstance(predictions, LesDatasetData)
    assert predictions.n_structures == 6
    frames = predictions.get_ase()
    assert frames[0].arrays['les_forces'].shape == (8, 3)
    assert 'les_max_force_std' in frames[0].info
    metrics = results['metrics'].get_dict()
    assert 'frames' not in metrics  # per-frame values travel with the predictions
    assert metrics['committee_size'] == 2
    data_regression.check(rounded({'errors': metrics['errors'], 'n_structures': metrics['n_structures']}))


@pytest.mark.parametrize(
    ('case', 'exit_code'),
    [
        ('invalid_config', EXIT.ERROR_INVALID_CONFIG),
        ('missing_data', EXIT.ERROR_INVALID_INPUT_DATA),
        ('no_metrics', EXIT.ERROR_METRICS_FILE_MISSING),
        ('no_stdout', EXIT.ERROR_OUTPUT_STDOUT_MISSING),
    ],
)
def test_failures(parse_fixture, case, exit_code):
    _, calcfunction = parse_fixture(ENTRY_POINT, case)
    assert calcfunction.exit_status == exit_code.status
