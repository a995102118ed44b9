"""LesLabelWorkChain: label a set of structures (CP2K or an ASE calculator) into one labelled dataset.

Structures come as a ``LesDatasetData`` of unlabelled frames (per-frame ``total_charge`` / ``spin_multiplicity`` in
``atoms.info`` are honoured), as a namespace of ``StructureData``, or as both: a dataset plus the StructureData of
its frames (keys ``frame_0000`` ...), made upstream by a calcfunction (the campaign's ``extract_frames``). Given a
dataset alone, the frames are unpacked by the calcfunction ``unpack_frames``, so every labelled StructureData has an
incoming link either way.

Structures are labelled ``batch_size`` per job (one job per structure by default): a batch job takes the structures
as its inputs ``structures.frame_<index>`` and gives one labelled frame per structure as ``labels.frame_<index>``,
so every label stays traceable to its structure and its job. Structures of a batch share the total charge and
multiplicity (batches are formed per charge/multiplicity). A structure that fails inside a batch is retried alone in
a job of its own (the single-structure process, with its restarts); the others' labels are kept. At most
``max_concurrent`` jobs run at once, as a sliding window: a slot is refilled as soon as any job ends. A structure
that fails the labeller's checks, or whose job (alone) fails, is excluded with its reason in the ``report`` output,
never silently. The merge is a calcfunction (``collect_labels``) that keeps each frame's origin and records the job
that labelled it.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import WorkChain, while_
from aiida.plugins import DataFactory

from workchains.label.functions import collect_labels, frame_key, unpack_frames
from workchains.label.labellers import get_labeller, get_labellers
from workchains.label.window import SlidingWindowMixin
from workchains.protocols.utils import ProtocolMixin

__all__ = ('LesLabelWorkChain', 'precheck_structure')

LesDatasetData = DataFactory('les.dataset')


def validate_inputs(inputs: dict, ctx) -> str | None:
    """A source of structures (a dataset, StructureData, or a dataset with its frames); the labeller's namespace."""
    has_dataset = 'dataset' in inputs
    has_structures = bool(inputs.get('structures'))
    # Exposed in a campaign with the structure ports excluded, the caller sets them at run time.
    sources_exposed = ctx is None or ('dataset' in ctx and 'structures' in ctx)
    if sources_exposed and not (has_dataset or has_structures):
        return 'Give either `dataset` (unlabelled frames) or `structures` (StructureData namespace); got neither.'
    if has_dataset and has_structures:
        error = _check_frames_match(inputs['dataset'], inputs['structures'])
        if error:
            return (
                'Give either `dataset` (unlabelled frames) or `structures` (StructureData namespace), or both with '
                f"`structures` holding the dataset's frames as frame_0000, frame_0001, ...: {error}"
            )
    labeller = inputs['labeller'].value if 'labeller' in inputs else 'cp2k'
    if labeller not in get_labellers():
        return f'Unknown labeller `{labeller}`; expected one of {sorted(get_labellers())}.'
    if not inputs.get(labeller):
        return f'Labeller `{labeller}` chosen but its `{labeller}` input namespace is empty.'
    batch_size = inputs['batch_size'].value if 'batch_size' in inputs else 1
    if batch_size > 1 and not get_labeller(labeller).batches:
        return f'Labeller `{labeller}` labels one structure per job: `batch_size` must be 1, got {batch_size}.'
    return None


def _check_frames_match(dataset, structures) -> str | None:
    """Return why ``structures`` are not the frames of ``dataset`` under ``frame_<index>`` keys (None if they are)."""
    frames = dataset.get_ase()
    expected = [frame_key(index) for index in range(len(frames))]
    if sorted(structures) != expected:
        shown = f'{expected[:3]}{"..." if len(expected) > 3 else ""}'
        return f'expected the {len(expected)} keys {shown}, got {sorted(structures)}'
    for key, atoms in zip(expected, frames, strict=True):
        other = structures[key].get_ase()
        same = len(other) == len(atoms) and (other.numbers == atoms.numbers).all()
        if not same or abs(other.positions - atoms.positions).max() > 1.0e-6:
            return f'`{key}` has other atoms or positions than frame {key.rsplit("_", 1)[-1]} of the dataset'
    return None


def precheck_structure(atoms, inputs, total_charge: int | None = None, multiplicity: int | None = None) -> str | None:
    """Return why the labeller of ``inputs`` would refuse ``atoms`` (None if it can be labelled); nothing runs.

    :param atoms: the structure (``ase.Atoms``, Å).
    :param inputs: ``les.label`` inputs (``labeller`` and its ``cp2k`` or ``ase`` namespace), as a mapping of nodes.
    :param total_charge: total charge (e); None takes the labeller namespace's ``total_charge`` (default 0).
    :param multiplicity: spin multiplicity 2S+1; None takes the namespace's ``multiplicity`` (default 1).
    """
    labeller = get_labeller(inputs['labeller'].value if 'labeller' in inputs else 'cp2k')
    namespace = labeller.calcjob_inputs(inputs.get(labeller.name) or {})
    if not namespace:
        return None  # validate_inputs reports the missing namespace
    if total_charge is None:
        total_charge = namespace['total_charge'].value if 'total_charge' in namespace else 0
    if multiplicity is None:
        multiplicity = namespace['multiplicity'].value if 'multiplicity' in namespace else 1
    return labeller.precheck(atoms, namespace, total_charge, multiplicity)


def validate_max_concurrent(value: orm.Int, _ctx) -> str | None:
    """At least one label at a time."""
    if value is not None and value.value < 1:
        return f'`max_concurrent` must be >= 1, got {value.value}.'
    return None


def validate_batch_size(value: orm.Int, _ctx) -> str | None:
    """At least one structure per job."""
    if value is not None and value.value < 1:
        return f'`batch_size` must be >= 1, got {value.value}.'
    return None


class LesLabelWorkChain(SlidingWindowMixin, ProtocolMixin, WorkChain):
    """Label many structures with CP2K (``les.cp2k.base``) or an ASE calculator (``les.ase_label``)."""

    _protocol_file = 'label.yaml'

    @classmethod
    def define(cls, spec):
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input('dataset', valid_type=LesDatasetData, required=False, help='Unlabelled frames to label.')
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='Structures to label; with `dataset`, the StructureData of its frames under `frame_0000`, ... (their '
            'charge, multiplicity and origin then come from the dataset).',
        )
        spec.input(
            'labeller',
            valid_type=orm.Str,
            default=lambda: orm.Str('cp2k'),
            serializer=orm.to_aiida_type,
            help='`cp2k` (les.cp2k.base) or `ase` (les.ase_label).',
        )
        spec.input(
            'max_concurrent',
            valid_type=orm.Int,
            default=lambda: orm.Int(4),
            serializer=orm.to_aiida_type,
            validator=validate_max_concurrent,
            help='Most labelling jobs running at once (a sliding window: a slot is refilled when any job ends).',
        )
        spec.input(
            'batch_size',
            valid_type=orm.Int,
            default=lambda: orm.Int(1),
            serializer=orm.to_aiida_type,
            validator=validate_batch_size,
            help='Structures labelled per job; 1 runs the single-structure process per structure.',
        )
        for labeller in get_labellers().values():
            process = labeller.process_class()
            spec.expose_inputs(
                process,
                namespace=labeller.name,
                exclude=labeller.exclude,
                namespace_options={
                    'required': False,
                    'populate_defaults': False,
                    'help': f'Inputs of {process.__name__} (labeller `{labeller.name}`).',
                },
            )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_continue)(cls.submit_jobs, cls.inspect_jobs),
            cls.results,
        )
        spec.output('labelled', valid_type=LesDatasetData, required=False, help='All successful labels, merged.')
        spec.output('report', valid_type=orm.Dict, help='Counts and, for each excluded structure, its reason.')
        spec.exit_code(410, 'ERROR_ALL_LABELS_FAILED', message='No structure could be labelled; see the report.')

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structures: LesDatasetData | list[orm.StructureData],
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        labeller: str = 'cp2k',
        calculator: dict | None = None,
    ):
        """Return a builder for ``structures`` labelled by ``labeller`` on the given protocol.

        :param code: ``les-cp2k`` code for ``cp2k``, ``les-ase-label`` code for ``ase``.
        :param structures: a ``LesDatasetData`` of unlabelled frames or a list of ``StructureData``.
        :param protocol: ``fast``, ``balanced`` or ``stringent`` (CP2K protocols; ignored by ``ase``).
        :param overrides: inputs merged over the protocol; unknown keys raise ``ValueError``.
        :param options: ``metadata.options`` for the labelling jobs.
        :param calculator: the ASE calculator description (``ase`` labeller only).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if isinstance(structures, LesDatasetData):
            builder.dataset = structures
        else:
            builder.structures = {f'structure_{index:04d}': s for index, s in enumerate(structures)}
        builder.labeller = orm.Str(labeller)
        builder.max_concurrent = orm.Int(inputs['max_concurrent'])
        if inputs.get('batch_size', 1) != 1:
            builder.batch_size = orm.Int(inputs['batch_size'])
        get_labeller(labeller).populate_builder(builder[labeller], code, inputs, options, calculator)
        return builder

    def setup(self):
        """Read the structures, pre-check them for the labeller and queue those that pass."""
        self.ctx.labeller = self.inputs.labeller.value
        if 'dataset' in self.inputs:
            frames = self.inputs.dataset.get_ase()
            structures = self.inputs.get('structures') or unpack_frames(
                self.inputs.dataset, metadata={'call_link_label': 'unpack_frames'}
            )
            entries = [
                (
                    i,
                    structures[frame_key(i)],
                    int(a.info.get('total_charge', 0)),
                    int(a.info.get('spin_multiplicity', 1)),
                )
                for i, a in enumerate(frames)
            ]
        else:
            entries = [(i, self.inputs.structures[k], None, None) for i, k in enumerate(sorted(self.inputs.structures))]
        self.ctx.n_requested = len(entries)
        self.ctx.failures = []
        self.ctx.labelled = {}
        self.ctx.retried = []
        # Queue entries: [index, structure, charge, multiplicity, alone]; `alone` marks a retry outside a batch.
        self.ctx.queue = []
        for index, structure, charge, multiplicity in entries:
            reason = precheck_structure(structure.get_ase(), self.inputs, charge, multiplicity)
            if reason:
                self.report(f'structure {index} excluded before labelling: {reason}')
                self.ctx.failures.append({'index': index, 'reason': f'refused: {reason}'})
            else:
                self.ctx.queue.append([index, structure, charge, multiplicity, False])
        # Running jobs: pk (str) -> indices of the structures they label; batch jobs also in `batches`.
        self.ctx.running = {}
        self.ctx.batches = []
        self.ctx.n_jobs = 0

    def should_continue(self):
        """Return True while structures wait in the queue or jobs run."""
        return bool(self.ctx.queue) or bool(self.ctx.running)

    def _next_batch(self) -> list:
        """Pop the next batch: up to ``batch_size`` queued structures sharing charge and multiplicity."""
        first = self.ctx.queue.pop(0)
        batch = [first]
        if first[4]:
            return batch
        size = self.inputs.batch_size.value
        for entry in list(self.ctx.queue):
            if len(batch) >= size:
                break
            if not entry[4] and (entry[2], entry[3]) == (first[2], first[3]):
                batch.append(entry)
                self.ctx.queue.remove(entry)
        return batch

    def submit_jobs(self):
        """Fill the free slots of the window with jobs, then wait until any running job ends."""
        labeller = get_labeller(self.ctx.labeller)
        while self.ctx.queue and len(self.ctx.running) < self.inputs.max_concurrent.value:
            batch = self._next_batch()
            inputs = AttributeDict(self.exposed_inputs(labeller.process_class(), namespace=labeller.name))
            _, structure, charge, multiplicity, _ = batch[0]
            if len(batch) == 1:
                process, inputs = labeller.single(inputs, structure, charge, multiplicity)
                label = f'label_{batch[0][0]:04d}'
            else:
                structures = {frame_key(entry[0]): entry[1] for entry in batch}
                process, inputs = labeller.batch(inputs, structures, charge, multiplicity)
                label = f'label_batch_{len(self.ctx.batches):04d}'
            inputs.metadata = {**dict(inputs.get('metadata') or {}), 'call_link_label': label}
            node = self.submit(process, **inputs)
            indices = [entry[0] for entry in batch]
            self.report(f'submitted {node.process_label}<{node.pk}> for structures {indices}')
            self.ctx.running[str(node.pk)] = indices
            self.ctx.n_jobs += 1
            if len(batch) > 1:
                self.ctx.batches.append(node.pk)
        return self.wait_for_any([orm.load_node(int(pk)) for pk in self.ctx.running])

    def inspect_jobs(self):
        """Take the labels of every job that ended; retry alone each structure a batch failed to label."""
        for pk in list(self.ctx.running):
            node = orm.load_node(int(pk))
            if not node.is_terminated:
                continue
            indices = self.ctx.running.pop(pk)
            if int(pk) in self.ctx.batches:
                self._inspect_batch(node, indices)
            else:
                self._inspect_single(node, indices[0])

    def _inspect_single(self, node, index: int) -> None:
        if node.is_finished_ok and 'labelled' in node.outputs:
            self.ctx.labelled[frame_key(index)] = node.outputs.labelled
            return
        reason = node.exit_message or f'{node.process_label} did not finish ({node.process_state.value})'
        self.report(f'structure {index} failed: {node.process_label}<{node.pk}> exit {node.exit_status}: {reason}')
        failure = {'index': index, 'pk': node.pk, 'exit_status': node.exit_status, 'reason': reason}
        self.ctx.failures.append(failure)

    def _inspect_batch(self, node, indices: list[int]) -> None:
        labels = node.outputs.labels if 'labels' in node.outputs else {}
        entries = node.outputs.output_parameters.get('structures', {}) if 'output_parameters' in node.outputs else {}
        retry = []
        for index in indices:
            key = frame_key(index)
            if key in labels:
                self.ctx.labelled[key] = labels[key]
                continue
            entry = entries.get(key) or {}
            reason = entry.get('message') or node.exit_message or f'{node.process_label} {node.process_state.value}'
            self.ctx.retried.append({'index': index, 'batch_pk': node.pk, 'exit_status': entry.get('exit_status')})
            self.report(f'structure {index} failed in batch {node.process_label}<{node.pk}>: {reason}; retrying alone')
            retry.append(index)
        # The structures to retry go first, each alone: their inputs are those of the batch job.
        structures = node.inputs.structures
        charge = node.inputs.total_charge.value if 'total_charge' in node.inputs else None
        multiplicity = node.inputs.multiplicity.value if 'multiplicity' in node.inputs else None
        retries = [[index, structures[frame_key(index)], charge, multiplicity, True] for index in retry]
        self.ctx.queue = retries + self.ctx.queue

    def results(self):
        """Merge the labels with a calcfunction; fail only when nothing was labelled."""
        report = {
            'n_requested': self.ctx.n_requested,
            'labeller': self.ctx.labeller,
            'batch_size': self.inputs.batch_size.value,
            'n_jobs': self.ctx.n_jobs,
            'retried_alone': sorted(self.ctx.retried, key=lambda item: item['index']),
            'failures': sorted(self.ctx.failures, key=lambda item: item['index']),
        }
        if 'dataset' in self.inputs:
            self.ctx.labelled['requested'] = self.inputs.dataset
        outputs = collect_labels(report=orm.Dict(report), **self.ctx.labelled, metadata={'call_link_label': 'merge'})
        self.out('report', outputs['report'])
        summary = outputs['report'].get_dict()
        self.report(f'labelled {summary["n_labelled"]} of {summary["n_requested"]}; {summary["n_failed"]} excluded')
        if 'labelled' not in outputs:
            return self.exit_codes.ERROR_ALL_LABELS_FAILED
        self.out('labelled', outputs['labelled'])
        return None
