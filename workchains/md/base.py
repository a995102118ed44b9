"""LesMdBaseWorkChain: run ``les.md`` until it succeeds, shortening the time step after unstable dynamics."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from aiida_les.calculations.base import INTERRUPTED_EXIT_CODES
from workchains.protocols.utils import ProtocolMixin
from workchains.reporting import ErrorReportMixin

__all__ = ('LesMdBaseWorkChain',)

LesMdCalculation = CalculationFactory('les.md')
# exit codes of a killed job or one that lost its files
_INTERRUPTED = (*INTERRUPTED_EXIT_CODES, 'ERROR_TRAJECTORY_FILE_MISSING', 'ERROR_SUMMARY_FILE_MISSING')
EXIT = LesMdCalculation.exit_codes


def validate_inputs(inputs, ctx) -> str | None:
    """Check the MD configuration with ``les_model.config`` before anything runs."""
    if 'md' not in ctx or 'structure' not in ctx:
        return None
    return LesMdCalculation.check_config({**inputs.get('md', {}), 'structure': inputs.get('structure')})


class LesMdBaseWorkChain(ErrorReportMixin, ProtocolMixin, BaseRestartWorkChain):
    """Run committee MD with ``les.md``, handling the failures the program reports.

    - unphysical dynamics (420: atoms too close, energy exploding): rerun from the starting structure with the time
      step scaled by ``defaults.timestep_factor`` and ``steps``/``write_every`` scaled inversely, so the simulated
      time and the frame spacing in fs stay the same;
    - invalid configuration, structure, model or device (430, 431, 432, 440): stop (310).

    A run stopped by committee uncertainty is a success of ``les.md`` (``stopped_by_uncertainty`` in
    ``output_parameters``) and ends this workchain successfully too.
    """

    _process_class = LesMdCalculation
    _protocol_file = 'md.yaml'

    defaults = AttributeDict({'timestep_factor': 0.5, 'min_timestep': 0.05})

    @classmethod
    def define(cls, spec):
        """Define the inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.expose_inputs(LesMdCalculation, namespace='md', exclude=('structure',))
        spec.input('structure', valid_type=orm.StructureData, help='Starting structure.')
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(LesMdCalculation)
        spec.exit_code(
            310,
            'ERROR_KNOWN_UNRECOVERABLE_FAILURE',
            message='The MD failed in a way that restarting cannot fix (configuration, structure, model or device).',
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData | None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        models: dict | None = None,
        **kwargs,
    ):
        """Return a builder prepopulated from ``protocol`` (``fast``, ``balanced`` or ``stringent``).

        :param code: an ``InstalledCode`` running ``les-md`` (plugin ``les.md``).
        :param structure: the starting structure (None: set it later, e.g. when the builder is a template).
        :param protocol: protocol name; None for the default.
        :param overrides: inputs merged over the protocol (``md.config`` keys included); unknown ports raise.
        :param options: ``metadata.options`` of the CalcJob merged over the protocol's.
        :param models: the committee, label -> LesModelData (may also be set later on ``builder.md.models``).
        :param kwargs: further top-level inputs set on the builder as given.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        md = inputs['md']
        metadata = md.get('metadata', {})
        metadata['options'] = {**metadata.get('options', {}), **(options or {})}
        builder = cls.get_builder()
        if structure is not None:
            builder.structure = structure
        builder.md.code = code
        builder.md.config = orm.Dict(md['config'])
        builder.md.metadata = metadata
        if models:
            builder.md.models = dict(models)
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        for key, value in kwargs.items():
            builder[key] = value
        return builder

    def setup(self):
        """Copy the exposed CalcJob inputs into the context."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LesMdCalculation, 'md'))
        self.ctx.inputs.structure = self.inputs.structure

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
        """Stop: the configuration, structure, model or device is wrong, and a restart would fail the same way."""
        self.report_error_handled(calculation, f'unrecoverable ({calculation.exit_message}): aborting')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)

    @process_handler(
        priority=300,
        exit_codes=[getattr(EXIT, name) for name in _INTERRUPTED],
    )
    def handle_job_interrupted(self, calculation):
        """The job was killed (node failure, SIGKILL) or lost its files: run the same inputs again (same seed)."""
        self.report_error_handled(calculation, 'the job was interrupted or lost its files: running it again')
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[EXIT.ERROR_MD_UNSTABLE])
    def handle_md_unstable(self, calculation):
        """Rerun with a shorter time step (``defaults.timestep_factor``) and proportionally more steps."""
        from les_model.config import MDConfig

        config = self.ctx.inputs.config.get_dict() if 'config' in self.ctx.inputs else {}
        timestep = config.get('timestep', MDConfig.default('timestep')) * self.defaults.timestep_factor
        if timestep < self.defaults.min_timestep:
            self.report_error_handled(calculation, f'time step would drop to {timestep:.3g} fs: aborting')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)
        steps = config.get('steps', MDConfig.default('steps'))
        config['timestep'] = timestep
        config['steps'] = int(round(steps / self.defaults.timestep_factor))
        write_every = config.get('write_every', MDConfig.default('write_every'))
        config['write_every'] = max(1, int(round(write_every / self.defaults.timestep_factor)))
        self.ctx.inputs.config = orm.Dict(config)
        self.report_error_handled(
            calculation, f'unstable dynamics: rerunning with timestep={timestep:.3g} fs and steps={config["steps"]}'
        )
        return ProcessHandlerReport(True)
