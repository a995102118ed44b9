"""LesTrainBaseWorkChain: run ``les.train`` until it succeeds, restarting after walltime stops and NaN losses."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ExitCode, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from aiida_les.calculations.base import INTERRUPTED_EXIT_CODES
from aiida_les.data.dataset import LesDatasetData
from aiida_les.utils.dicts import recursive_merge
from workchains.protocols.utils import ProtocolMixin
from workchains.reporting import ErrorReportMixin

__all__ = ('LesTrainBaseWorkChain',)

LesTrainCalculation = CalculationFactory('les.train')
# exit codes of a killed job or one that lost its files
_INTERRUPTED = (*INTERRUPTED_EXIT_CODES, 'ERROR_MODEL_FILE_MISSING', 'ERROR_METRICS_FILE_MISSING')
EXIT = LesTrainCalculation.exit_codes


def validate_inputs(inputs, ctx) -> str | None:
    """Check the training configuration with ``les_model.config`` before anything runs."""
    if 'train' not in ctx or 'dataset' not in ctx:
        return None
    return LesTrainCalculation.check_config({**inputs.get('train', {}), 'dataset': inputs.get('dataset')})


def _has_checkpoint(remote: orm.RemoteData) -> bool:
    """Whether ``remote`` still holds the training checkpoint (False when the folder cannot be listed)."""
    try:
        return LesTrainCalculation._CHECKPOINT_FILENAME in remote.listdir()
    except Exception:  # folder gone, host unreachable: any transport error means no usable checkpoint
        return False


class LesTrainBaseWorkChain(ErrorReportMixin, ProtocolMixin, BaseRestartWorkChain):
    """Train an LES model with ``les.train``, handling the failures the program reports.

    - out of walltime with a checkpoint (400): resume from the checkpoint in the ``remote_folder``;
    - NaN loss (410): train afresh with the learning rate scaled by ``defaults.nan_lr_factor``;
    - invalid configuration, data, model or device (430, 431, 432, 440): stop (310), retrying cannot help;
    - scheduler killed the job at its walltime (120): resume from the last periodic checkpoint (off by default: the
      checkpoint may not exist yet);
    - sanity check on success: when ``max_valid_forces_rmse`` is given and the validation force RMSE exceeds it,
      continue training from the trained model with ``defaults.epochs_factor`` times the epochs.
    """

    _process_class = LesTrainCalculation
    _protocol_file = 'train.yaml'
    _protocol_meta_keys = ('description', 'backbones')

    defaults = AttributeDict(
        {
            'nan_lr_factor': 0.1,
            'nan_min_lr': 1.0e-7,
            'epochs_factor': 2,
            'max_epochs': 100000,
        }
    )

    @classmethod
    def define(cls, spec):
        """Define the inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.expose_inputs(LesTrainCalculation, namespace='train', exclude=('dataset',))
        spec.input('dataset', valid_type=LesDatasetData, help='Labelled training data.')
        spec.input(
            'max_valid_forces_rmse',
            valid_type=orm.Float,
            required=False,
            serializer=orm.to_aiida_type,
            help='Sanity threshold [meV/Å] on the validation force RMSE; above it training continues with more '
            'epochs from the trained model.',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.inputs.validator = validate_inputs
        spec.expose_outputs(LesTrainCalculation)
        spec.exit_code(
            310,
            'ERROR_KNOWN_UNRECOVERABLE_FAILURE',
            message='The training failed in a way that restarting cannot fix (configuration, data, model or device).',
        )

    @classmethod
    def get_available_backbones(cls) -> list[str]:
        """Return the short-range hosts every protocol has model settings for (``mpnn``, ``mace``)."""
        protocols = cls._load_protocol_file()['protocols'].values()
        return sorted(set.intersection(*(set(entry['backbones']) for entry in protocols)))

    @classmethod
    def get_protocol_inputs(
        cls, protocol: str | None = None, overrides: dict | None = None, backbone: str | None = None
    ) -> dict:
        """Return the inputs of ``protocol`` with the model settings of ``backbone``, then ``overrides``, merged in.

        The backbone is ``backbone``, else ``train.config.model.backbone`` of ``overrides``, else the file's
        ``default_backbone``. Its preset (``backbones.<name>`` of the protocol: host size and shape) is merged into
        ``train.config.model`` together with ``backbone: <name>`` before the overrides, so an override changes one
        host setting and keeps the others.

        :raises ValueError: for an unknown protocol, backbone or override key, or a ``backbone`` argument that
            contradicts the one in ``overrides``.
        """
        overrides = cls.read_overrides(overrides)
        requested = ((overrides or {}).get('train', {}).get('config') or {}).get('model', {}).get('backbone')
        if backbone is not None and requested is not None and backbone != requested:
            raise ValueError(
                f'backbone `{backbone}` contradicts `train.config.model.backbone` `{requested}` of the overrides.'
            )
        backbone = backbone or requested or cls._load_protocol_file()['default_backbone']
        protocol = cls._check_protocol_name(protocol)
        presets = cls._load_protocol_file()['protocols'][protocol]['backbones']
        if backbone not in presets:
            raise ValueError(f'Unknown backbone `{backbone}`; protocol `{protocol}` has {sorted(presets)}.')
        inputs = super().get_protocol_inputs(protocol)
        host = {'train': {'config': {'model': {'backbone': backbone, **presets[backbone]}}}}
        inputs = recursive_merge(inputs, host)
        return recursive_merge(inputs, overrides) if overrides is not None else inputs

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        dataset: LesDatasetData | None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        backbone: str | None = None,
        **kwargs,
    ):
        """Return a builder prepopulated from ``protocol`` (``fast``, ``balanced`` or ``stringent``).

        :param code: an ``InstalledCode`` running ``les-train`` (plugin ``les.train``).
        :param dataset: the labelled training data (None: set it later, e.g. when the builder is a template).
        :param protocol: protocol name; None for the default.
        :param overrides: inputs merged over the protocol (``train.config`` keys included); unknown ports raise.
        :param options: ``metadata.options`` of the CalcJob merged over the protocol's (e.g. ``gpu_options()``).
        :param backbone: short-range host, ``mpnn`` (this project's, the default) or ``mace`` (needs mace-torch);
            the protocol's model settings for it are used (see :meth:`get_protocol_inputs`).
        :param kwargs: further top-level inputs set on the builder as given (``validation_dataset`` goes to
            ``train``).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides, backbone=backbone)
        train = inputs['train']
        metadata = train.get('metadata', {})
        metadata['options'] = {**metadata.get('options', {}), **(options or {})}
        builder = cls.get_builder()
        if dataset is not None:
            builder.dataset = dataset
        builder.train.code = code
        builder.train.config = orm.Dict(train['config'])
        builder.train.metadata = metadata
        for key in ('validation_dataset', 'parent_model', 'parent_folder'):
            if key in kwargs:
                builder.train[key] = kwargs.pop(key)
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        if 'max_valid_forces_rmse' in inputs:
            builder.max_valid_forces_rmse = orm.Float(inputs['max_valid_forces_rmse'])
        for key, value in kwargs.items():
            builder[key] = value
        return builder

    def setup(self):
        """Copy the exposed CalcJob inputs into the context."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LesTrainCalculation, 'train'))
        self.ctx.inputs.dataset = self.inputs.dataset

    def _config(self) -> dict:
        return self.ctx.inputs.config.get_dict() if 'config' in self.ctx.inputs else {}

    def _set_config(self, config: dict) -> None:
        self.ctx.inputs.config = orm.Dict(config)

    @process_handler(
        priority=600,
        exit_codes=[
            EXIT.ERROR_INVALID_CONFIG,
            EXIT.ERROR_INVALID_INPUT_DATA,
            EXIT.ERROR_INCOMPATIBLE_MODEL,
            EXIT.ERROR_DEVICE_UNAVAILABLE,
        ],
    )
    def handle_unrecoverable_failure(self, calculation):
        """Stop: the configuration, data, model or device is wrong, and a restart would fail the same way."""
        self.report_error_handled(calculation, f'unrecoverable ({calculation.exit_message}): aborting')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)

    @process_handler(priority=500, exit_codes=[EXIT.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, calculation):
        """Resume from the checkpoint in the ``remote_folder`` of the stopped run."""
        self.ctx.inputs.parent_folder = calculation.outputs.remote_folder
        self.ctx.inputs.pop('parent_model', None)  # the checkpoint already holds the weights
        self.report_error_handled(
            calculation, f'resuming from the checkpoint in RemoteData<{self.ctx.inputs.parent_folder.pk}>'
        )
        return ProcessHandlerReport(True)

    @process_handler(
        priority=490, exit_codes=[LesTrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME], enabled=False
    )
    def handle_scheduler_out_of_walltime(self, calculation):
        """Resume from the last periodic checkpoint after the scheduler killed the job (off by default)."""
        self.ctx.inputs.parent_folder = calculation.outputs.remote_folder
        self.ctx.inputs.pop('parent_model', None)
        self.report_error_handled(calculation, 'killed by the scheduler: resuming from the last periodic checkpoint')
        return ProcessHandlerReport(True)

    @process_handler(
        priority=300,
        exit_codes=[getattr(EXIT, name) for name in _INTERRUPTED],
    )
    def handle_job_interrupted(self, calculation):
        """The job was killed (node failure, SIGKILL) or lost its files: resume from its last periodic checkpoint
        when one survived in its ``remote_folder``, otherwise train again from the same inputs.
        """
        remote = calculation.outputs.remote_folder if 'remote_folder' in calculation.outputs else None
        if remote is not None and _has_checkpoint(remote):
            self.ctx.inputs.parent_folder = remote
            self.ctx.inputs.pop('parent_model', None)
            self.report_error_handled(calculation, f'interrupted: resuming from the checkpoint of <{remote.pk}>')
        else:
            self.report_error_handled(calculation, 'interrupted and no checkpoint survived: training again')
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[EXIT.ERROR_NAN_LOSS])
    def handle_nan_loss(self, calculation):
        """Train afresh with the learning rate scaled by ``defaults.nan_lr_factor`` (and ``min_lr`` kept below it)."""
        from les_model.config import TrainConfig

        config = self._config()
        lr = config.get('lr', TrainConfig.default('lr')) * self.defaults.nan_lr_factor
        if lr < self.defaults.nan_min_lr:
            self.report_error_handled(calculation, f'learning rate would drop to {lr:.3g}, below the floor: aborting')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)
        config['lr'] = lr
        config['min_lr'] = min(config.get('min_lr', TrainConfig.default('min_lr')), lr * 0.01)
        self._set_config(config)
        self.ctx.inputs.pop('parent_folder', None)  # the checkpoint's configuration differs now; start afresh
        self.report_error_handled(calculation, f'NaN loss: training afresh with lr={lr:.3g}')
        return ProcessHandlerReport(True)

    @process_handler(priority=100, exit_codes=[ExitCode(0)])
    def handle_validation_error_too_high(self, calculation):
        """Continue training from the trained model when the validation force RMSE exceeds the threshold."""
        if 'max_valid_forces_rmse' not in self.inputs or 'model' not in calculation.outputs:
            return None
        threshold = self.inputs.max_valid_forces_rmse.value
        final = calculation.outputs.metrics.get('final', {})
        rmse = (final.get('valid') or final.get('train') or {}).get('forces_rmse')
        if rmse is None or rmse <= threshold:
            return None
        config = self._config()
        from les_model.config import TrainConfig

        epochs = config.get('epochs', TrainConfig.default('epochs'))
        if epochs * self.defaults.epochs_factor > self.defaults.max_epochs:
            self.report_error_handled(calculation, f'forces RMSE {rmse:.3g} > {threshold} but epochs at the cap')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)
        config['epochs'] = int(epochs * self.defaults.epochs_factor)
        self._set_config(config)
        self.ctx.inputs.parent_model = calculation.outputs.model
        self.ctx.inputs.pop('parent_folder', None)
        self.report_error_handled(
            calculation,
            f'validation forces RMSE {rmse:.3g} meV/Å > {threshold}: continuing with {config["epochs"]} epochs',
        )
        return ProcessHandlerReport(True)
