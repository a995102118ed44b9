"""LesTrainCalculation: train an LES model (or a committee) with ``les-train`` on a labelled dataset."""

from __future__ import annotations

import typing as t

from aiida import orm
from aiida.common.folders import Folder

from aiida_les.calculations.base import BaseLesCalculation
from aiida_les.calculations.launch import check_processes, processes_per_machine, torchrun_line
from aiida_les.data.dataset import LesDatasetData
from aiida_les.data.model import LesModelData

__all__ = ('LesTrainCalculation',)


class LesTrainCalculation(BaseLesCalculation):
    """Train an LES potential with ``les-train`` on ``dataset``.

    Warm start: ``parent_model`` (a LesModelData) initialises the weights (``init_model``). Restart after a walltime
    stop: ``parent_folder`` (the ``remote_folder`` of the stopped run) provides the checkpoint, which is copied (not
    linked, training overwrites it) and resumed from, bit for bit. When the configuration sets no ``max_walltime``,
    it is derived from ``metadata.options.max_wallclock_seconds`` with a safety margin, so the program checkpoints
    and exits (exit code 400) before the scheduler kills it.

    Data-parallel training: ``metadata.options.resources`` with ``num_mpiprocs_per_machine`` N > 1 runs
    ``torchrun --standalone --nproc_per_node N les-train ...`` on the one machine (one process per GPU with
    ``device='cuda'``); ``batch_size`` stays the global batch (:mod:`aiida_les.calculations.launch`).
    """

    _KIND = 'train'
    _DEFAULT_PARSER = 'les.train'
    _TRAIN_FILENAME = 'train.extxyz'
    _VALID_FILENAME = 'valid.extxyz'
    _INIT_MODEL_FILENAME = 'init_model.pt'
    _MODEL_FILENAME = 'model.pt'
    _CHECKPOINT_FILENAME = 'checkpoint.pt'
    _METRICS_FILENAME = 'metrics.json'
    _LEARNING_CURVE_FILENAME = 'learning_curve.png'
    _EXPORT_FILENAME = 'exported_model.pt'
    _OWNED_KEYS: t.ClassVar[dict[str, str]] = {
        'train_file': 'dataset',
        'valid_file': 'validation_dataset',
        'init_model': 'parent_model',
        'model_file': '',
        'export_file': 'export',
        'device': 'metadata.options.device',
    }
    #: Fraction of the scheduler walltime given to the program; the rest is kept for checkpointing and staging.
    WALLTIME_FRACTION = 0.9
    #: The program stops at the latest this many seconds before the scheduler walltime.
    WALLTIME_MARGIN_S = 300.0

    @classmethod
    def define(cls, spec):
        """Define the inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('dataset', valid_type=LesDatasetData, help='Labelled training data (energies, forces, ...).')
        spec.input(
            'validation_dataset',
            valid_type=LesDatasetData,
            required=False,
            help='Validation data; without it `valid_fraction` of `dataset` is held out.',
        )
        spec.input(
            'parent_model',
            valid_type=LesModelData,
            required=False,
            help='Model whose weights initialise the training (warm start, fine-tuning).',
        )
        spec.input(
            'parent_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='Remote folder of a run stopped at its walltime; training resumes from its checkpoint.',
        )
        spec.input(
            'export',
            valid_type=orm.Bool,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Bool(False),
            help='Also write the trained model or committee (energy = committee mean) as a metatomic model '
            '(`exported_model`; needs the `export` extra where the job runs).',
        )
        spec.output('model', valid_type=LesModelData, required=False, help='The trained model (committee_size 1).')
        spec.output_namespace(
            'models',
            valid_type=LesModelData,
            dynamic=True,
            required=False,
            help='The trained committee members `member_<i>` (committee_size > 1).',
        )
        spec.output('metrics', valid_type=orm.Dict, help='Final errors (energy per atom, forces, ...) and history.')
        spec.output(
            'learning_curve',
            valid_type=orm.SinglefileData,
            required=False,
            help='PNG of training and validation loss against epoch.',
        )
        spec.output(
            'exported_model',
            valid_type=orm.SinglefileData,
            required=False,
            help='The metatomic model (TorchScript .pt, float64) of the trained model or committee, with `export`.',
        )
        spec.default_output_node = 'metrics'

        spec.exit_code(320, 'ERROR_MODEL_FILE_MISSING', message='The model file was not retrieved.')
        spec.exit_code(321, 'ERROR_METRICS_FILE_MISSING', message='The metrics file was not retrieved.')
        spec.exit_code(322, 'ERROR_METRICS_FILE_READ', message='The metrics file could not be read: {error}')
        spec.exit_code(323, 'ERROR_MODEL_FILE_READ', message='The model file could not be read: {error}')
        spec.exit_code(
            324, 'ERROR_EXPORTED_MODEL_MISSING', message='`export` was set but no metatomic model was retrieved.'
        )
        spec.exit_code(
            400,
            'ERROR_OUT_OF_WALLTIME',
            message='Training stopped at its walltime and wrote a checkpoint; restart from `remote_folder`.',
        )
        spec.exit_code(
            405,
            'ERROR_OUT_OF_WALLTIME_NO_CHECKPOINT',
            message='Training stopped at its walltime but no checkpoint was found.',
        )
        spec.exit_code(410, 'ERROR_NAN_LOSS', message='The loss or a gradient became NaN or infinite.')

    @classmethod
    def placeholder_files(cls, inputs: dict) -> dict[str, t.Any]:
        """Return the owned keys as the CalcJob will set them."""
        placeholder = {'train_file': cls._TRAIN_FILENAME, 'model_file': cls._MODEL_FILENAME}
        if 'validation_dataset' in inputs:
            placeholder['valid_file'] = cls._VALID_FILENAME
        if 'parent_model' in inputs:
            placeholder['init_model'] = cls._INIT_MODEL_FILENAME
        if _export_requested(inputs):
            placeholder['export_file'] = cls._EXPORT_FILENAME
        options = inputs.get('metadata', {}).get('options', {})
        placeholder['device'] = options.get('device', 'auto')
        return placeholder

    @classmethod
    def validate_specific(cls, inputs: dict, config: dict) -> str | None:
        """Refuse a warm start and a checkpoint restart at once (the checkpoint already holds the weights)."""
        if 'parent_model' in inputs and 'parent_folder' in inputs:
            return 'give either `parent_model` (warm start) or `parent_folder` (checkpoint restart), not both.'
        from les_model.config import TrainConfig

        options = inputs.get('metadata', {}).get('options', {})
        batch_size = int(config.get('batch_size', TrainConfig.default('batch_size')))
        return check_processes(options.get('resources', {}), bool(options.get('withmpi', False)), batch_size)

    def write_input_files(self, folder: Folder) -> tuple[dict[str, t.Any], list, list]:
        """Copy the datasets and the parent model; copy the checkpoint of ``parent_folder`` on the remote."""
        owned: dict[str, t.Any] = {'train_file': self._TRAIN_FILENAME, 'model_file': self._MODEL_FILENAME}
        local_copy_list = [(self.inputs.dataset.uuid, self.inputs.dataset.filename, self._TRAIN_FILENAME)]
        if 'validation_dataset' in self.inputs:
            node = self.inputs.validation_dataset
            local_copy_list.append((node.uuid, node.filename, self._VALID_FILENAME))
            owned['valid_file'] = self._VALID_FILENAME
        if 'parent_model' in self.inputs:
            node = self.inputs.parent_model
            local_copy_list.append((node.uuid, node.filename, self._INIT_MODEL_FILENAME))
            owned['init_model'] = self._INIT_MODEL_FILENAME
        if _export_requested(self.inputs):
            owned['export_file'] = self._EXPORT_FILENAME
        remote_copy_list = []
        if 'parent_folder' in self.inputs:
            parent = self.inputs.parent_folder
            remote_copy_list.append(
                (
                    parent.computer.uuid,
                    f'{parent.get_remote_path()}/{self._CHECKPOINT_FILENAME}',
                    self._CHECKPOINT_FILENAME,
                )
            )
        return owned, local_copy_list, remote_copy_list

    def build_config(self, owned: dict[str, t.Any]) -> dict[str, t.Any]:
        """Add ``max_walltime`` from the scheduler walltime when the configuration has none; quiet progress bars."""
        config = super().build_config(owned)
        walltime = self.inputs.metadata.options.get('max_wallclock_seconds')
        if not config.get('max_walltime') and walltime:
            config['max_walltime'] = float(
                max(walltime * self.WALLTIME_FRACTION, walltime - self.WALLTIME_MARGIN_S, 1.0)
            )
        config.setdefault('progress', False)
        return config

    def cmdline_params(self) -> list[str]:
        """``les-train config.yaml`` (plus ``--resume`` when restarting from the copied checkpoint)."""
        params = [self.inputs.metadata.options.input_filename]
        if 'parent_folder' in self.inputs:
            params.append('--resume')
        return params

    def retrieve_files(self, config: dict[str, t.Any]) -> list[str]:
        """The model file(s), metrics and learning curve; the checkpoint stays on the remote."""
        stem = self._MODEL_FILENAME[: -len('.pt')]
        files = [self._MODEL_FILENAME, f'{stem}_*.pt', self._METRICS_FILENAME, self._LEARNING_CURVE_FILENAME]
        return [*files, self._EXPORT_FILENAME] if config.get('export_file') else files

    def prepare_for_submission(self, folder: Folder):
        """Also fetch the checkpoint into the temporary retrieved folder, so the parser can see that it exists."""
        calcinfo = super().prepare_for_submission(folder)
        calcinfo.retrieve_temporary_list = [self._CHECKPOINT_FILENAME]
        return calcinfo

    def presubmit(self, folder: Folder):
        """Write the job script; with N > 1 processes per machine, its ``les-train`` line runs under ``torchrun``."""
        calc_info = super().presubmit(folder)
        processes = processes_per_machine(self.node.get_option('resources'))
        if processes > 1:
            name = self.node.get_option('submit_script_filename')
            path = folder.get_abs_path(name)
            with open(path, encoding='utf-8') as handle:
                script = handle.read()
            script = torchrun_line(script, str(self.inputs.code.get_executable()), processes)
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(script)
        return calc_info


def _export_requested(inputs) -> bool:
    """Whether the ``export`` input is set (a Bool node, or a plain bool before serialisation)."""
    value = inputs.get('export', False)
    return bool(getattr(value, 'value', value))
