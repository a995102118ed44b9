"""LesTrainParser: attach the trained model(s), the metrics and the learning curve of a ``les-train`` run."""

from __future__ import annotations

import io
import pathlib
import tempfile
import typing as t

from aiida import orm
from aiida.engine import ExitCode

from aiida_les.data.model import LesModelData
from aiida_les.parsers.base import BaseLesParser, ProgramReport, finite_or_none

__all__ = ('LesTrainParser',)

#: Process type of the campaign, whose UUID a model trained inside one records.
CAMPAIGN_PROCESS_TYPE = 'aiida.workflows:les.active_learning'


class LesTrainParser(BaseLesParser):
    """Parser of :class:`~aiida_les.calculations.train.LesTrainCalculation`.

    Exit codes: 400 when the program stopped at ``max_walltime`` and the checkpoint exists (restart from
    ``remote_folder``), 405 when it stopped there without one, 410 for a NaN loss, 430/431/432/440 for bad
    configuration, data, model or device, 320-323 for missing or unreadable output files. On a failure the
    ``metrics`` written so far are still attached (the learning history up to the failure).

    Each model node records what it was trained on (attributes ``training_dataset_uuid``,
    ``validation_dataset_uuid``, ``level_of_theory``) and, when trained inside a campaign, ``campaign_uuid``.
    """

    ERROR_MAP: t.ClassVar[dict[str, str]] = {
        **BaseLesParser.ERROR_MAP,
        'NAN_LOSS': 'ERROR_NAN_LOSS',
        'OUT_OF_WALLTIME': 'ERROR_OUT_OF_WALLTIME',
    }

    def parse_outputs(self, report: ProgramReport, files: list[str], **kwargs) -> ExitCode | None:
        """Attach ``metrics``, ``model`` or ``models.member_<k>``, ``exported_model``, ``learning_curve``."""
        calc = self.node.process_class
        metrics = None
        if calc._METRICS_FILENAME in files:
            try:
                metrics = self.read_json(calc._METRICS_FILENAME)
            except ValueError as exception:
                return self.exit_codes.ERROR_METRICS_FILE_READ.format(error=str(exception))
            self.out('metrics', orm.Dict(finite_or_none(metrics)))

        exit_code = self.error_exit_code(report)
        if exit_code is not None:
            if exit_code.status == self.exit_codes.ERROR_OUT_OF_WALLTIME.status and not self._has_checkpoint(kwargs):
                return self.exit_codes.ERROR_OUT_OF_WALLTIME_NO_CHECKPOINT
            return exit_code
        if not report.finished:
            return self.incomplete_exit_code()
        if metrics is None:
            return self.exit_codes.ERROR_METRICS_FILE_MISSING

        model_files = metrics.get('model_files') or [calc._MODEL_FILENAME]
        missing = [name for name in model_files if name not in files]
        if missing:
            return self.exit_codes.ERROR_MODEL_FILE_MISSING
        try:
            models = [self._model_node(name) for name in model_files]
        except ValueError as exception:
            return self.exit_codes.ERROR_MODEL_FILE_READ.format(error=str(exception))
        if len(models) == 1:
            self.out('model', models[0])
        else:
            self.out('models', {f'member_{index}': node for index, node in enumerate(models)})

        if 'export' in self.node.inputs and self.node.inputs.export.value:
            if calc._EXPORT_FILENAME not in files:
                return self.exit_codes.ERROR_EXPORTED_MODEL_MISSING
            content = self.retrieved.base.repository.get_object_content(calc._EXPORT_FILENAME, mode='rb')
            self.out('exported_model', orm.SinglefileData(io.BytesIO(content), filename=calc._EXPORT_FILENAME))

        if calc._LEARNING_CURVE_FILENAME in files:
            content = self.retrieved.base.repository.get_object_content(calc._LEARNING_CURVE_FILENAME, mode='rb')
            self.out('learning_curve', orm.SinglefileData(io.BytesIO(content), filename=calc._LEARNING_CURVE_FILENAME))
        return None

    def _has_checkpoint(self, kwargs: dict) -> bool:
        """Whether the checkpoint arrived in the temporary retrieved folder (it stays in ``remote_folder``)."""
        folder = kwargs.get('retrieved_temporary_folder')
        if folder is None:
            return False
        path = pathlib.Path(folder) / self.node.process_class._CHECKPOINT_FILENAME
        return path.is_file() and path.stat().st_size > 0

    def _model_node(self, filename: str) -> LesModelData:
        """Return a LesModelData of the retrieved model file, with its configuration, species and version.

        :raises ValueError: if the file is not a model file ``les_model`` can read.
        """
        from ase.data import chemical_symbols

        from les_model.io import read_model_file

        content = self.retrieved.base.repository.get_object_content(filename, mode='rb')
        with tempfile.TemporaryDirectory() as dirpath:
            path = pathlib.Path(dirpath) / filename
            path.write_bytes(content)
            try:
                payload = read_model_file(path)
            except (OSError, ValueError) as exception:
                raise ValueError(str(exception)) from exception
        species = [chemical_symbols[int(z)] if not isinstance(z, str) else z for z in payload.get('species', [])]
        node = LesModelData(
            io.BytesIO(content),
            filename=filename,
            model_config=finite_or_none(payload.get('model_config', {})),
            les_model_version=payload.get('les_model_version'),
            species=species,
        )
        for key, value in self._training_provenance().items():
            node.base.attributes.set(key, value)
        return node

    def _training_provenance(self) -> dict[str, str | None]:
        """UUIDs of the training and validation datasets and of the campaign, and the labels' level of theory."""
        inputs = self.node.inputs
        dataset = inputs.dataset if 'dataset' in inputs else None
        validation = inputs.validation_dataset if 'validation_dataset' in inputs else None
        campaign = self.node.caller
        while campaign is not None and campaign.process_type != CAMPAIGN_PROCESS_TYPE:
            campaign = campaign.caller
        return {
            'training_dataset_uuid': None if dataset is None else dataset.uuid,
            'validation_dataset_uuid': None if validation is None else validation.uuid,
            'level_of_theory': None if dataset is None else dataset.base.attributes.get('level_of_theory', None),
            'campaign_uuid': None if campaign is None else campaign.uuid,
        }
