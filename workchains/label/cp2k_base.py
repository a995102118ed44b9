"""LesCp2kBaseWorkChain: run ``les.cp2k`` with restarts for walltime, memory and killed jobs; stop on bad SCF.

SCF convergence is fixed inside the job by custodian (label-consistent corrections only); this workchain handles
what the job cannot: the time limit (restart with more walltime), memory (restart on more machines) and a job that
was killed or lost its working files (run it again unchanged).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from workchains.protocols.utils import ProtocolMixin
from workchains.reporting import ErrorReportMixin

__all__ = ('LesCp2kBaseWorkChain',)

LesCp2kCalculation = CalculationFactory('les.cp2k')


class LesCp2kBaseWorkChain(ErrorReportMixin, ProtocolMixin, BaseRestartWorkChain):
    """Label one structure with ``les.cp2k``, restarting on walltime, memory and interrupted-job failures."""

    _process_class = LesCp2kCalculation
    _protocol_file = 'cp2k.yaml'

    defaults = AttributeDict(
        {
            'walltime_factor': 2.0,
            'max_wallclock_seconds': 24 * 3600,
            'max_num_machines': 8,
        }
    )

    @classmethod
    def define(cls, spec):
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.expose_inputs(LesCp2kCalculation, namespace='cp2k')
        spec.input(
            'clean_workdir',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            serializer=orm.to_aiida_type,
            help='Clean the remote folders of all calculations when the workchain terminates.',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(LesCp2kCalculation)
        spec.exit_code(
            310, 'ERROR_KNOWN_UNRECOVERABLE_FAILURE', message='The calculation failed with an unrecoverable error.'
        )
        spec.exit_code(
            320,
            'ERROR_SCF_UNRECOVERABLE',
            message='The SCF did not converge after every label-consistent correction custodian could apply.',
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        total_charge: int = 0,
        multiplicity: int = 1,
    ):
        """Return a builder prepopulated from ``protocol`` (``fast``, ``balanced`` or ``stringent``).

        :param code: an ``InstalledCode`` running ``les-cp2k`` (plugin ``les.cp2k``).
        :param structure: the structure to label.
        :param protocol: protocol name; None for the default (``balanced``).
        :param overrides: inputs merged over the protocol; unknown keys raise ``ValueError``.
        :param options: ``metadata.options`` of the CalcJob merged over the protocol's.
        :param total_charge: total charge (e).
        :param multiplicity: spin multiplicity 2S+1.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        cp2k = inputs['cp2k']
        if options:
            cp2k['metadata']['options'] = {**cp2k['metadata']['options'], **options}
        builder = cls.get_builder()
        builder.cp2k.code = code
        builder.cp2k.structure = structure
        builder.cp2k.parameters = orm.Dict(cp2k['parameters'])
        builder.cp2k.settings = orm.Dict(cp2k['settings'])
        builder.cp2k.total_charge = orm.Int(total_charge)
        builder.cp2k.multiplicity = orm.Int(multiplicity)
        builder.cp2k.metadata.options = cp2k['metadata']['options']
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        return builder

    def setup(self):
        """Copy the exposed CalcJob inputs into the context."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LesCp2kCalculation, 'cp2k'))

    @process_handler(priority=600, exit_codes=[LesCp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, calculation):
        """Restart with ``walltime_factor`` times the walltime, up to ``max_wallclock_seconds``."""
        options = dict(self.ctx.inputs.metadata.options)
        current = options.get('max_wallclock_seconds') or 3600
        if current >= self.defaults.max_wallclock_seconds:
            self.report_error_handled(calculation, 'walltime already at the maximum: giving up')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)
        options['max_wallclock_seconds'] = int(
            min(current * self.defaults.walltime_factor, self.defaults.max_wallclock_seconds)
        )
        self.ctx.inputs.metadata.options = options
        self.report_error_handled(
            calculation, f'restarting with max_wallclock_seconds={options["max_wallclock_seconds"]}'
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=590, exit_codes=[LesCp2kCalculation.exit_codes.ERROR_OUT_OF_MEMORY])
    def handle_out_of_memory(self, calculation):
        """Restart on twice the machines (memory is distributed by MPI), up to ``max_num_machines``."""
        options = dict(self.ctx.inputs.metadata.options)
        resources = dict(options['resources'])
        machines = int(resources.get('num_machines', 1))
        if machines >= self.defaults.max_num_machines:
            self.report_error_handled(calculation, 'already at the maximum number of machines: giving up')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)
        resources['num_machines'] = min(2 * machines, self.defaults.max_num_machines)
        options['resources'] = resources
        self.ctx.inputs.metadata.options = options
        self.report_error_handled(calculation, f'restarting on num_machines={resources["num_machines"]}')
        return ProcessHandlerReport(True)

    @process_handler(
        priority=500,
        exit_codes=[
            LesCp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED,
            LesCp2kCalculation.exit_codes.ERROR_SCF_CORRECTION_REFUSED,
        ],
    )
    def handle_scf_unrecoverable(self, calculation):
        """Stop: custodian already tried every label-consistent SCF correction inside the job."""
        self.report_error_handled(calculation, 'custodian exhausted the label-consistent SCF corrections: stopping')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_SCF_UNRECOVERABLE)

    @process_handler(priority=490, exit_codes=[LesCp2kCalculation.exit_codes.ERROR_LABEL_INCONSISTENT])
    def handle_label_inconsistent(self, calculation):
        """Stop: the computed settings changed, so the label cannot be trusted."""
        self.report_error_handled(calculation, 'the label is inconsistent with the protocol: stopping')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_KNOWN_UNRECOVERABLE_FAILURE)

    @process_handler(
        priority=400,
        exit_codes=[
            LesCp2kCalculation.exit_codes.ERROR_OUTPUT_STDOUT_MISSING,
            LesCp2kCalculation.exit_codes.ERROR_OUTPUT_STDOUT_READ,
            LesCp2kCalculation.exit_codes.ERROR_OUTPUT_STDOUT_INCOMPLETE,
            LesCp2kCalculation.exit_codes.ERROR_CORRECTIONS_FILE_MISSING,
        ],
    )
    def handle_job_interrupted(self, calculation):
        """Run the same inputs again: the job was killed or lost its files (node failure, scratch purge).

        Nothing CP2K computed is reused, so the label of the rerun is as consistent as a first run; ``max_iterations``
        bounds the reruns of a job that keeps dying.
        """
        self.report_error_handled(calculation, 'the job was interrupted or lost its files: running it again')
        return ProcessHandlerReport(True)

    def on_terminated(self):
        """Clean the working directories of all child calculations if ``clean_workdir`` is True."""
        super().on_terminated()
        if not self.inputs.clean_workdir.value:
            return
        cleaned = []
        for called in self.node.called_descendants:
            if isinstance(called, orm.CalcJobNode):
                try:
                    called.outputs.remote_folder._clean()
                    cleaned.append(str(called.pk))
                except (OSError, KeyError):
                    pass
        if cleaned:
            self.report(f'cleaned remote folders of calculations: {" ".join(cleaned)}')
