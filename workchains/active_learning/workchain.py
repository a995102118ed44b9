"""LesActiveLearningWorkChain: train a committee, explore with MD, select, label with DFT, merge, repeat.

One generation: train ``committee_size`` models in parallel (``les.train.base``) -> run MD from every seed at every
temperature with the committee (``les.md.base``), stopping a trajectory when its committee force deviation runs away
-> measure the committee's error on the held-out DFT set (``les.evaluate``) -> select frames between the trust
levels, deduplicated and diverse, under the per-generation budget (``select_structures``) -> label them
(``les.label``) -> merge them into the dataset (``merge_datasets``) -> apply the stopping rule. Every dataset
transformation is a calcfunction, so the provenance graph shows which label entered which model; every frame also
carries its origin and labelling job (:mod:`aiida_les.provenance.origin`). Each generation's record
(:class:`~workchains.active_learning.record.GenerationRecord`, a row of the ``summary``) is read back from its steps in
the provenance graph, as continuations and ``aiida-les campaign show`` read it; the steps' call-link labels are those
of :mod:`workchains.active_learning.links`. Seeds keep their total charge and spin multiplicity (``total_charges``,
``multiplicities``) through the MD, the selection and the labels.

The final committee is the one trained in the last generation: the labels that generation added are in the
``dataset`` output but not in the models, and the summary (``final_models``) and the report name them.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, append_, if_, while_
from aiida.plugins import CalculationFactory, DataFactory, WorkflowFactory

from aiida_les.calculations.functions.export_committee import export_available, export_committee
from aiida_les.calculations.functions.select_structures import select_structures
from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o
from workchains.active_learning.frames import extract_selected, labels_not_trained_on
from workchains.active_learning.functions import summarise_campaign
from workchains.active_learning.history import generation_children, generation_record
from workchains.active_learning.labelling import CampaignLabellingMixin
from workchains.active_learning.links import SUMMARY, generation_link
from workchains.active_learning.parameters import DEFAULT_PARAMETERS, validate_parameters
from workchains.active_learning.record import GenerationRecord, count_labels_used
from workchains.active_learning.restart import validate_continuation
from workchains.active_learning.schedule import md_run_config, md_runs, n_stages, next_stage
from workchains.active_learning.stopping import evaluate_stopping_rule
from workchains.active_learning.validation import (
    check_dataset_levels,
    check_dataset_species,
    check_initial_frames,
    check_program_configs,
    check_seeds,
)
from workchains.protocols.utils import ProtocolMixin
from workchains.reporting import significant

__all__ = ('LesActiveLearningWorkChain',)

LesTrainBaseWorkChain = WorkflowFactory('les.train.base')
LesMdBaseWorkChain = WorkflowFactory('les.md.base')
LesLabelWorkChain = WorkflowFactory('les.label')
LesEvaluateCalculation = CalculationFactory('les.evaluate')
LesModelData = DataFactory('les.model')


def validate_inputs(inputs: dict, _ctx) -> str | None:
    """Seeds present and labellable; the initial frames within the label budget; a validation set only with a dataset,
    both and the labels at one level of theory, with no element the dataset lacks; program configurations valid;
    restart sane.
    """
    if not inputs.get('structures'):
        return 'At least one seed structure is needed in `structures`.'
    if 'validation_dataset' in inputs and 'dataset' not in inputs:
        return '`validation_dataset` was given without `dataset`: give both, or neither to label initial frames.'
    return (
        check_seeds(inputs)
        or check_initial_frames(inputs)
        or check_dataset_levels(inputs)
        or check_dataset_species(inputs)
        or check_program_configs(inputs)
        or validate_continuation(inputs)
    )


class LesActiveLearningWorkChain(CampaignLabellingMixin, ProtocolMixin, WorkChain):
    """Active-learning campaign for an LES potential: committee training, MD exploration, selection, DFT labels."""

    _protocol_file = 'active_learning.yaml'

    @classmethod
    def define(cls, spec):
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Seed structures.')
        spec.input('dataset', valid_type=LesDatasetData, required=False, help='Labelled starting dataset.')
        spec.input('validation_dataset', valid_type=LesDatasetData, required=False, help='Held-out DFT test set.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            validator=validate_parameters,
            help=f'Campaign settings; keys and defaults: {sorted(DEFAULT_PARAMETERS)}.',
        )
        spec.input_namespace(
            'restart',
            required=False,
            populate_defaults=False,
            help='Continue a campaign from its last complete generation; fill with get_builder_restart.',
        )
        spec.input(
            'restart.state',
            valid_type=orm.Dict,
            required=False,
            help='Previous campaign (UUID), next generation, labels used so far, per-generation statistics.',
        )
        spec.input_namespace(
            'restart.models',
            valid_type=LesModelData,
            dynamic=True,
            required=False,
            help='The previous committee (member_<i>): the first generation warm-starts from it.',
        )
        excluded = {'required': False, 'populate_defaults': False}
        spec.expose_inputs(
            LesTrainBaseWorkChain,
            namespace='train',
            exclude=('dataset', 'train.parent_model', 'train.validation_dataset'),
            namespace_options={**excluded, 'required': True, 'help': 'Inputs of each committee training.'},
        )
        spec.expose_inputs(
            LesMdBaseWorkChain,
            namespace='md',
            exclude=('structure', 'md.models'),
            namespace_options={'required': True, 'populate_defaults': False, 'help': 'Inputs of each MD run.'},
        )
        spec.expose_inputs(
            LesLabelWorkChain,
            namespace='label',
            exclude=('dataset', 'structures'),
            namespace_options={'required': True, 'populate_defaults': False, 'help': 'Inputs of the labelling.'},
        )
        spec.expose_inputs(
            LesEvaluateCalculation,
            namespace='evaluate',
            exclude=('dataset', 'models'),
            namespace_options={'required': True, 'populate_defaults': False, 'help': 'Held-out evaluation.'},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.should_label_initial_frames)(cls.label_initial_frames, cls.inspect_initial_labels),
            while_(cls.should_run_generation)(
                cls.train_committee,
                cls.inspect_committee,
                cls.explore,
                cls.inspect_exploration,
                cls.select,
                if_(cls.has_candidates)(cls.label_candidates, cls.inspect_labels),
                cls.check_convergence,
            ),
            cls.results,
        )
        spec.output_namespace('models', valid_type=orm.Data, dynamic=True, help='The final committee.')
        spec.output('dataset', valid_type=LesDatasetData, help='The final labelled training set.')
        spec.output('validation_dataset', valid_type=LesDatasetData, help='The held-out DFT set.')
        spec.output('summary', valid_type=orm.Dict, help='Per-generation statistics and the stop reason.')
        spec.output('exported_model', valid_type=orm.SinglefileData, required=False, help='Final committee, metatomic.')
        spec.exit_code(401, 'ERROR_SUB_PROCESS_FAILED_TRAIN', message='A committee training failed: {message}')
        spec.exit_code(402, 'ERROR_SUB_PROCESS_FAILED_EXPLORE', message='Every MD exploration failed.')
        spec.exit_code(403, 'ERROR_SUB_PROCESS_FAILED_LABEL', message='Labelling failed: {message}')
        spec.exit_code(404, 'ERROR_SUB_PROCESS_FAILED_EVALUATE', message='The held-out evaluation failed.')
        spec.exit_code(
            405,
            'ERROR_NO_LABELS_ADDED',
            message='No selected frame could be labelled ({message}); the outputs are those of the initial data.',
        )

    @classmethod
    def get_builder_from_protocol(cls, codes: dict, structures: dict, protocol: str | None = None, **kwargs):
        """Return a builder for a campaign; see :mod:`workchains.active_learning.builder`."""
        from workchains.active_learning.builder import get_builder_from_protocol

        return get_builder_from_protocol(cls, codes, structures, protocol, **kwargs)

    @classmethod
    def get_builder_restart(cls, previous: orm.WorkChainNode, **kwargs):
        """Return a builder that continues or extends campaign ``previous`` (:mod:`.restart`)."""
        from workchains.active_learning.restart import get_builder_restart

        return get_builder_restart(cls, previous, **kwargs)

    def setup(self):
        """Fix the settings, the starting datasets and the counters."""
        self.ctx.parameters = AttributeDict({**DEFAULT_PARAMETERS, **self.inputs.parameters.get_dict()})
        self.ctx.generation = self.ctx.first_generation = 0
        self.ctx.labels_before = 0  # by the campaigns this one continues
        self.ctx.n_initial_labels = 0
        self.ctx.stop_reason = None
        self.ctx.statistics = []  # stored GenerationRecords, those of the continued campaigns first
        self.ctx.unlabelled_generations = 0  # consecutive generations whose selected frames all failed to label
        if 'dataset' in self.inputs:
            self.ctx.dataset = self.inputs.dataset
            self.ctx.validation_dataset = self.inputs.get('validation_dataset')
        if 'restart' in self.inputs and 'state' in self.inputs.restart:
            self._continue(self.inputs.restart.state.get_dict(), self.inputs.restart.get('models', {}))
        self.report(
            f'campaign: {len(self.inputs.structures)} seed structure(s), committee of '
            f'{self.ctx.parameters.committee_size}, at most {self.ctx.parameters.max_generations} generation(s), '
            f'label budget {self.ctx.parameters.label_budget}'
        )

    def _continue(self, state: dict, models: dict):
        """Take the counters, history and committee of the campaign this run continues."""
        self.ctx.generation = self.ctx.first_generation = int(state['generation'])
        self.ctx.labels_before = int(state['labels_used'])
        # The stopping rule looks back `patience` generations, across the continuation too.
        self.ctx.statistics = list(state['statistics'])
        for record in reversed(self._records()):
            if not record.no_labels_added:
                break
            self.ctx.unlabelled_generations += 1
        if models:
            self.ctx.models = [models[key] for key in sorted(models, key=lambda key: int(key.rsplit('_', 1)[-1]))]
        reused = '; '.join(state.get('reused', [])) or 'its dataset'
        self.report(
            f'continuing campaign {state.get("previous_pk", state["previous_campaign"])} at generation '
            f'{self.ctx.generation} with {self._labels_used()} labels used; reused {reused}'
        )

    def _records(self) -> list[GenerationRecord]:
        """The records of the generations done, those of the campaigns this one continues first."""
        return [GenerationRecord.from_stored(row) for row in self.ctx.statistics]

    def _labels_used(self, records: list[GenerationRecord] | None = None) -> int:
        """DFT labels used by this campaign and those it continues, up to ``records`` (default: generations done)."""
        records = self._records() if records is None else records
        own = [record for record in records if record.generation >= self.ctx.first_generation]
        return count_labels_used(self.ctx.labels_before, self.ctx.n_initial_labels, own)

    def _generation_record(self) -> GenerationRecord:
        """The current generation's record, read from its steps in the provenance graph as restarts read it."""
        steps = generation_children(self.node).get(self.ctx.generation, {})
        return generation_record(self.ctx.generation, steps, self.node.pk)

    def _n_stages(self) -> int:
        p = self.ctx.parameters
        return n_stages(p.exploration_schedule, sorted(self.inputs.structures), p.temperatures)

    def _stage(self) -> int:
        """The exploration stage of the current generation (0-based; schedule.py), from the generations done."""
        stage, stages = 0, self._n_stages()
        advance = self.ctx.parameters.schedule_advance_fraction
        for record in self._records():
            if record.schedule_stage is not None:
                stage = next_stage(record.schedule_stage, record.accurate_fraction, stages, advance)
        return stage

    def should_run_generation(self):
        """Go on until the stopping rule says stop."""
        return self.ctx.stop_reason is None

    def train_committee(self):
        """Train the committee members in parallel, warm-starting from the previous generation when asked."""
        generation = self.ctx.generation
        previous = getattr(self.ctx, 'models', None)
        self.ctx.trainings = []
        self.ctx.trained_on = self.ctx.dataset
        for member in range(self.ctx.parameters.committee_size):
            inputs = AttributeDict(self.exposed_inputs(LesTrainBaseWorkChain, namespace='train'))
            inputs.dataset = self.ctx.dataset
            config = inputs.train.config.get_dict() if 'config' in inputs.train else {}
            config['seed'] = int(self.ctx.parameters.seed) + member
            inputs.train.config = orm.Dict(config)
            if self.ctx.validation_dataset is not None:
                inputs.train.validation_dataset = self.ctx.validation_dataset
            if previous and self.ctx.parameters.warm_start:
                inputs.train.parent_model = previous[member]
            inputs.metadata = {'call_link_label': generation_link(generation, 'train', member)}
            self.to_context(trainings=append_(self.submit(LesTrainBaseWorkChain, **inputs)))
        self.report(
            f'generation {generation}: training {self.ctx.parameters.committee_size} models on '
            f'{self.ctx.dataset.n_structures} frames'
        )

    def inspect_committee(self):
        """All members must succeed: a committee with a hole gives a biased uncertainty."""
        failed = [node for node in self.ctx.trainings if not node.is_finished_ok]
        if failed:
            message = ', '.join(f'{node.pk} (exit {node.exit_status})' for node in failed)
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_TRAIN.format(message=message)
        self.ctx.models = [node.outputs.model for node in self.ctx.trainings]
        finals = [node.outputs.metrics.get('final', {}) for node in self.ctx.trainings]
        errors = [final.get('valid') or final.get('train') or {} for final in finals]
        forces = ', '.join(significant(error.get('forces_rmse')) for error in errors)
        energies = ', '.join(significant(error.get('energy_per_atom_rmse')) for error in errors)
        self.report(
            f'generation {self.ctx.generation}: committee trained; validation force RMSE [{forces}] meV/Å, '
            f'energy RMSE [{energies}] meV/atom'
        )
        return None

    def explore(self):
        """MD from every seed at every temperature with the committee, and the held-out evaluation."""
        generation = self.ctx.generation
        models = {f'member_{index}': model for index, model in enumerate(self.ctx.models)}
        self.ctx.explorations = []
        self.ctx.exploration_origins = []
        p = self.ctx.parameters
        stage, stages = self._stage(), self._n_stages()
        runs = md_runs(p.exploration_schedule, stage, sorted(self.inputs.structures), p.temperatures)
        if stages > 1:
            conditions = sorted(
                {f'{run.temperature:g} K' + (f' {run.pressure:g} bar' if run.pressure else '') for run in runs}
            )
            self.report(f'generation {generation}: exploration stage {stage + 1}/{stages}: {", ".join(conditions)}')
        for run in runs:
            inputs = AttributeDict(self.exposed_inputs(LesMdBaseWorkChain, namespace='md'))
            inputs.structure = self.inputs.structures[run.seed]
            inputs.md.models = models
            config = inputs.md.config.get_dict() if 'config' in inputs.md else {}
            # The seed's charge and spin, as in its initial labels: the frames are labelled at them too.
            config.update(
                **md_run_config(run.temperature, run.pressure),
                max_force_std=float(p.md_stop_force_std),
                total_charge=float((p.total_charges or {}).get(run.seed, 0)),
                multiplicity=int((p.multiplicities or {}).get(run.seed, 1)),
            )
            config['seed'] = int(self.ctx.parameters.seed) + 1000 * generation + len(self.ctx.explorations)
            inputs.md.config = orm.Dict(config)
            inputs.metadata = {'call_link_label': generation_link(generation, 'md', run.suffix)}
            self.ctx.exploration_origins.append(
                {o.GENERATION: generation, o.TEMPERATURE: run.temperature, o.SEED: run.seed}
            )
            self.to_context(explorations=append_(self.submit(LesMdBaseWorkChain, **inputs)))
        inputs = AttributeDict(self.exposed_inputs(LesEvaluateCalculation, namespace='evaluate'))
        inputs.dataset = self.ctx.validation_dataset
        inputs.models = models
        inputs.metadata.call_link_label = generation_link(generation, 'evaluate')
        self.report(f'generation {generation}: {len(self.ctx.explorations)} MD runs and the held-out evaluation')
        return ToContext(evaluation=self.submit(LesEvaluateCalculation, **inputs))

    def inspect_exploration(self):
        """Keep the trajectories of finished runs; record the held-out force error."""
        finished = {f'md_{index}': node for index, node in enumerate(self.ctx.explorations) if node.is_finished_ok}
        failed = len(self.ctx.explorations) - len(finished)
        if not finished:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_EXPLORE
        self.ctx.trajectories = {key: node.outputs.trajectory for key, node in finished.items()}
        origins = self.ctx.exploration_origins
        self.ctx.origins = {key: origins[int(key.split('_')[1])] for key in finished}
        finished = list(finished.values())
        stopped = sum(bool(node.outputs.output_parameters.get('stopped_by_uncertainty')) for node in finished)
        if not self.ctx.evaluation.is_finished_ok:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_EVALUATE
        record = self._generation_record()
        self.ctx.force_error = record.heldout_force_rmse_ev_per_ang
        self.report(
            f'generation {self.ctx.generation}: {len(finished)} trajectories ({failed} failed, {stopped} stopped by '
            f'uncertainty); held-out force RMSE {significant(record.heldout_force_rmse_mev_per_ang)} meV/Å'
        )
        self.ctx.force_std_scale = None
        if self.ctx.parameters.calibrate_uncertainty and record.force_std_scale:
            self.ctx.force_std_scale = record.force_std_scale
            self.report(
                f'generation {self.ctx.generation}: uncertainty calibrated on the held-out set: expected force error '
                f'= {record.force_std_scale:.3g} x committee deviation; ENCE {record.ence_raw:.2f} -> '
                f'{record.ence_calibrated:.2f}, miscalibration area {record.miscalibration_area_raw:.2f} -> '
                f'{record.miscalibration_area_calibrated:.2f}; trust_lower {self.ctx.parameters.trust_lower} eV/Å '
                'applies to the expected error'
            )
        return None

    def select(self):
        """Pick frames to label from all trajectories (calcfunction: the choice is in the provenance graph)."""
        remaining = self.ctx.parameters.label_budget - self._labels_used()
        budget = max(0, min(self.ctx.parameters.labels_per_generation, remaining))
        p = self.ctx.parameters
        parameters = {'trust_lower': p.trust_lower, 'trust_upper': p.trust_upper, 'budget': budget}
        if self.ctx.force_std_scale is not None:
            # The calibrated expected error decides what is accurate: an overconfident committee's frames are
            # candidates by their expected error, no special rule needed.
            parameters['force_std_scale'] = self.ctx.force_std_scale
        else:
            # Uncalibrated: everything looks accurate to the committee but the held-out error says otherwise, so
            # label its more uncertain frames anyway rather than spend a generation on nothing.
            parameters['fallback'] = self.ctx.force_error is not None and self.ctx.force_error > p.force_error_target
        if p.charge_threshold is not None:
            parameters['charge_threshold'] = p.charge_threshold
        parameters['origins'] = self.ctx.origins
        result = select_structures(
            parameters=orm.Dict(parameters),
            reference=self.ctx.dataset,
            **self.ctx.trajectories,
            metadata={'call_link_label': generation_link(self.ctx.generation, 'select')},
        )
        report = result['report'].get_dict()
        self.ctx.candidates = result.get('selected')
        if self.ctx.candidates is not None:
            self.ctx.candidate_structures = extract_selected(
                report['selected_sources'], self.ctx.trajectories, self.ctx.generation
            )
        n_selected = 0 if self.ctx.candidates is None else self.ctx.candidates.n_structures
        self.report(
            f'generation {self.ctx.generation}: {report["n_frames"]} frames explored, accurate fraction '
            f'{report["accurate_fraction"]:.1%}, counts {report["counts"]}, selected {n_selected}'
        )

    def check_convergence(self):
        """Apply the stopping rule and report every criterion."""
        p = self.ctx.parameters
        record = self._generation_record()
        record.no_labels_added = record.n_selected > 0 and record.n_labelled == 0
        record.schedule_stage = self._stage()
        records = [*self._records(), record]
        last_stage = self._n_stages() - 1
        decision = evaluate_stopping_rule(
            # Converged only counts at the schedule's last stage (rows without a stage predate schedules).
            [done.accurate_fraction or 0.0 if done.schedule_stage in (None, last_stage) else 0.0 for done in records],
            [done.heldout_force_rmse_ev_per_ang for done in records],
            self._labels_used(records),
            p.label_budget,
            self.ctx.generation,
            p.max_generations,
            accurate_threshold=p.accurate_threshold,
            patience=p.patience,
            force_error_target=p.force_error_target,
            unlabelled_generations=self.ctx.unlabelled_generations,
        )
        record.stopping = decision.message
        self.ctx.statistics.append(record.stored())
        self.report(decision.message)
        following = self._stage()
        if following != record.schedule_stage and not decision.stop:
            self.report(
                f'generation {self.ctx.generation}: accurate fraction {record.accurate_fraction:.1%} >= '
                f'{p.schedule_advance_fraction:.0%}: exploration schedule advances to stage {following + 1}/'
                f'{self._n_stages()}'
            )
        if decision.stop:
            self.ctx.stop_reason = decision.reason
        self.ctx.generation += 1

    def results(self):
        """Expose the final committee, datasets and the campaign summary."""
        for index, model in enumerate(self.ctx.models):
            self.out(f'models.member_{index}', model)
        if self.ctx.parameters.export_model and self.ctx.models:
            if export_available():
                members = {f'member_{i}': model for i, model in enumerate(self.ctx.models)}
                try:  # a failed export (recorded as an excepted calcfunction) must not lose the other outputs
                    self.out('exported_model', export_committee(**members, metadata={'call_link_label': 'export'}))
                except (ValueError, NotImplementedError, RuntimeError) as exc:
                    self.report(f'export_model: the export failed ({exc}); no exported_model')
            else:
                self.report('export_model: metatomic-torch is not installed (the `export` extra); no exported_model')
        self.out('dataset', self.ctx.dataset)
        self.out('validation_dataset', self.ctx.validation_dataset)
        final_models = self._final_models()
        generations = {f'generation_{row["generation"]:02d}': orm.Dict(row) for row in self.ctx.statistics}
        summary = summarise_campaign(
            stop_reason=orm.Str(self.ctx.stop_reason),
            final_models=orm.Dict(final_models),
            **generations,
            metadata={'call_link_label': SUMMARY},
        )
        self.out('summary', summary)
        self.report(f'campaign finished after {self.ctx.generation} generation(s): {self.ctx.stop_reason}')
        ran = [record for record in self._records() if record.no_labels_added is not None]  # not rebuilt rows
        if self.ctx.stop_reason == 'labels_refused' or (ran and all(record.no_labels_added for record in ran)):
            generations = ', '.join(str(record.generation) for record in ran if record.no_labels_added)
            return self.exit_codes.ERROR_NO_LABELS_ADDED.format(message=f'generation(s) {generations}')
        return None

    def _final_models(self) -> dict:
        """Which dataset the final committee was trained on, and which labels of the final dataset it has not seen."""
        trained_on = getattr(self.ctx, 'trained_on', None) or self.ctx.dataset
        unseen = labels_not_trained_on(self.ctx.dataset, trained_on)
        record = {
            'training_dataset_uuid': trained_on.uuid,
            'n_frames_trained_on': trained_on.n_structures,
            'n_labels_not_trained_on': len(unseen),
            'labels_not_trained_on': unseen,
        }
        if unseen:
            self.report(
                f'the final committee was trained on {trained_on.n_structures} frames (dataset pk {trained_on.pk}); '
                f'the {len(unseen)} label(s) of the last generation are in the `dataset` output but not in the '
                'models (summary `final_models`); `aiida-les campaign extend` trains on them'
            )
        return record
