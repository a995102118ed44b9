"""LesEvaluateCalculation: predictions and errors of an LES model (or committee) on a dataset (``les-eval``)."""

from __future__ import annotations

import typing as t

from aiida import orm
from aiida.common.folders import Folder

from aiida_les.calculations.base import BaseLesCalculation, committee_copy_list, committee_filenames, validate_models
from aiida_les.data.dataset import LesDatasetData
from aiida_les.data.model import LesModelData

__all__ = ('LesEvaluateCalculation',)


class LesEvaluateCalculation(BaseLesCalculation):
    """Evaluate the committee ``models`` on ``dataset`` with ``les-eval``.

    Outputs the error metrics against the labels present in ``dataset`` (energy per atom [eV], forces [eV/Å], ...)
    and the predictions (with committee spread when several models are given) as a dataset.
    """

    _KIND = 'eval'
    _DEFAULT_PARSER = 'les.evaluate'
    _DATA_FILENAME = 'data.extxyz'
    _PREDICTIONS_FILENAME = 'predictions.extxyz'
    _METRICS_FILENAME = 'metrics.json'
    _CALIBRATION_PLOT_FILENAME = 'calibration.png'
    _OWNED_KEYS: t.ClassVar[dict[str, str]] = {
        'models': 'models',
        'data_file': 'dataset',
        'predictions_file': '',
        'metrics_file': '',
        'calibration_plot': '',
        'device': 'metadata.options.device',
    }

    @classmethod
    def define(cls, spec):
        """Define the inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('dataset', valid_type=LesDatasetData, help='Structures to predict; labelled ones give errors.')
        spec.input_namespace(
            'models',
            valid_type=LesModelData,
            dynamic=True,
            validator=validate_models,
            help='One or more LesModelData; several give committee means and deviations.',
        )
        spec.output('metrics', valid_type=orm.Dict, help='Errors against the labels of `dataset` (MAE, RMSE).')
        spec.output('predictions', valid_type=LesDatasetData, help='The structures with predicted properties.')
        spec.output(
            'calibration_plot',
            valid_type=orm.SinglefileData,
            required=False,
            help='PNG: binned true force error against the committee force deviation, raw and calibrated '
            '(a committee on labelled forces only; the numbers are under `calibration` in `metrics`).',
        )
        spec.default_output_node = 'metrics'

        spec.exit_code(320, 'ERROR_PREDICTIONS_FILE_MISSING', message='The predictions file was not retrieved.')
        spec.exit_code(321, 'ERROR_METRICS_FILE_MISSING', message='The metrics file was not retrieved.')
        spec.exit_code(322, 'ERROR_METRICS_FILE_READ', message='The metrics file could not be read: {error}')
        spec.exit_code(323, 'ERROR_PREDICTIONS_FILE_READ', message='The predictions file could not be read: {error}')

    @classmethod
    def placeholder_files(cls, inputs: dict) -> dict[str, t.Any]:
        """Return the owned keys as the CalcJob will set them."""
        options = inputs.get('metadata', {}).get('options', {})
        return {
            'models': committee_filenames(inputs.get('models', {}) or {'0': None}),
            'data_file': cls._DATA_FILENAME,
            'predictions_file': cls._PREDICTIONS_FILENAME,
            'metrics_file': cls._METRICS_FILENAME,
            'calibration_plot': cls._CALIBRATION_PLOT_FILENAME,
            'device': options.get('device', 'auto'),
        }

    def write_input_files(self, folder: Folder) -> tuple[dict[str, t.Any], list, list]:
        """Copy the dataset and the model files."""
        filenames, local_copy_list = committee_copy_list(self.inputs.models)
        local_copy_list.append((self.inputs.dataset.uuid, self.inputs.dataset.filename, self._DATA_FILENAME))
        owned = {
            'models': filenames,
            'data_file': self._DATA_FILENAME,
            'predictions_file': self._PREDICTIONS_FILENAME,
            'metrics_file': self._METRICS_FILENAME,
            'calibration_plot': self._CALIBRATION_PLOT_FILENAME,
        }
        return owned, local_copy_list, []

    def retrieve_files(self, config: dict[str, t.Any]) -> list[str]:
        """The predictions, the metrics and the calibration plot (absent for a single model)."""
        return [self._PREDICTIONS_FILENAME, self._METRICS_FILENAME, self._CALIBRATION_PLOT_FILENAME]
