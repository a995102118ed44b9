"""LesEvaluateParser: attach the error metrics and the predictions of a ``les-eval`` run."""

from __future__ import annotations

import io

from aiida import orm
from aiida.engine import ExitCode

from aiida_les.data.dataset import LesDatasetData
from aiida_les.parsers.base import BaseLesParser, ProgramReport, finite_or_none

__all__ = ('LesEvaluateParser',)


class LesEvaluateParser(BaseLesParser):
    """Parser of :class:`~aiida_les.calculations.evaluate.LesEvaluateCalculation`.

    ``metrics`` holds the errors (MAE/RMSE) and the committee uncertainty summary, all in milli-units of eV and e
    (meV/atom, meV/Å, me; the unit of each key is in its ``units``); the per-frame values are not duplicated there:
    they travel with each frame of ``predictions`` (``les_*`` entries of ``atoms.info`` and ``atoms.arrays``, in eV,
    eV/Å and e like every extxyz file).
    """

    def parse_outputs(self, report: ProgramReport, files: list[str], **kwargs) -> ExitCode | None:
        """Attach ``metrics`` and ``predictions``; return the exit code."""
        calc = self.node.process_class
        exit_code = self.error_exit_code(report)
        if exit_code is not None:
            return exit_code
        if not report.finished:
            return self.incomplete_exit_code()
        if calc._METRICS_FILENAME not in files:
            return self.exit_codes.ERROR_METRICS_FILE_MISSING
        try:
            metrics = self.read_json(calc._METRICS_FILENAME)
        except ValueError as exception:
            return self.exit_codes.ERROR_METRICS_FILE_READ.format(error=str(exception))
        if calc._PREDICTIONS_FILENAME not in files:
            return self.exit_codes.ERROR_PREDICTIONS_FILE_MISSING
        content = self.retrieved.base.repository.get_object_content(calc._PREDICTIONS_FILENAME, mode='rb')
        try:
            predictions = LesDatasetData(io.BytesIO(content), filename=calc._PREDICTIONS_FILENAME)
        except ValueError as exception:
            return self.exit_codes.ERROR_PREDICTIONS_FILE_READ.format(error=str(exception))
        metrics.pop('frames', None)
        self.out('metrics', orm.Dict(finite_or_none(metrics)))
        self.out('predictions', predictions)
        if calc._CALIBRATION_PLOT_FILENAME in files:
            content = self.retrieved.base.repository.get_object_content(calc._CALIBRATION_PLOT_FILENAME, mode='rb')
            plot = orm.SinglefileData(io.BytesIO(content), filename=calc._CALIBRATION_PLOT_FILENAME)
            self.out('calibration_plot', plot)
        return None
