"""LesLabelWorkChain: label a set of structures (CP2K or an ASE calculator) into one labelled dataset.

Structures come as a ``LesDatasetData`` of unlabelled frames (per-frame ``total_charge`` / ``spin_multiplicity`` in
``atoms.info`` are honoured), as a namespace of ``StructureData``, or as both: a dataset plus the StructureData of
its frames (keys ``frame_0000`` ...), made upstream by a calcfunction (the campaign's ``extract_frames``). Given a
dataset alone, the frames are unpacked by the calcfunction ``unpack_frames``, so every labelled StructureData has an
incoming link either way. Labels run at most ``max_concurrent`` at a time; a structure that fails the labeller's
checks, or whose calculation fails, is excluded with its reason in the ``report`` output, never silently. The merge
is a calcfunction (``collect_labels``) that keeps each frame's origin and records the job that labelled it.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, while_
from aiida.plugins import CalculationFactory, DataFactory, WorkflowFactory

from aiida_les.calculations.ase_label import check_ase_inputs
from aiida_les.labelling.validation import check_structure
from workchains.label.functions import collect_labels, frame_key, unpack_frames
from workchains.protocols.utils import ProtocolMixin

__all__ = ('LesLabelWorkChain', 'precheck_structure')

LesDatasetData = DataFactory('les.dataset')
LesAseLabelCalculation = CalculationFactory('les.ase_label')
LesCp2kBaseWorkChain = WorkflowFactory('les.cp2k.base')
LABELLERS = ('cp2k', 'ase')


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
    if labeller not in LABELLERS:
        return f'Unknown labeller `{labeller}`; expected one of {list(LABELLERS)}.'
    if not inputs.get(labeller):
        return f'Labeller `{labeller}` chosen but its `{labeller}` input namespace is empty.'
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
    labeller = inputs['labeller'].value if 'labeller' in inputs else 'cp2k'
    namespace = (inputs.get('cp2k') or {}).get('cp2k') if labeller == 'cp2k' else inputs.get('ase')
    if not namespace:
        return None  # validate_inputs reports the missing namespace
    if total_charge is None:
        total_charge = namespace['total_charge'].value if 'total_charge' in namespace else 0
    if multiplicity is None:
        multiplicity = namespace['multiplicity'].value if 'multiplicity' in namespace else 1
    if labeller == 'cp2k':
        if 'parameters' not in namespace:
            return None
        return check_structure(atoms, namespace['parameters'].get_dict(), total_charge, multiplicity)
    if 'calculator' not in namespace:
        return None
    return check_ase_inputs(atoms, namespace['calculator'].get_dict(), total_charge, multiplicity)


def validate_max_concurrent(value: orm.Int, _ctx) -> str | None:
    """At least one label at a time."""
    if value is not None and value.value < 1:
        return f'`max_concurrent` must be >= 1, got {value.value}.'
    return None


class LesLabelWorkChain(ProtocolMixin, WorkChain):
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
            help='Most labelling processes running at once.',
        )
        spec.expose_inputs(
            LesCp2kBaseWorkChain,
            namespace='cp2k',
            exclude=('cp2k.structure',),
            namespace_options={'required': False, 'populate_defaults': False, 'help': 'Inputs of les.cp2k.base.'},
        )
        spec.expose_inputs(
            LesAseLabelCalculation,
            namespace='ase',
            exclude=('structure',),
            namespace_options={'required': False, 'populate_defaults': False, 'help': 'Inputs of les.ase_label.'},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_submit)(cls.submit_batch, cls.inspect_batch),
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
        if labeller == 'cp2k':
            base = LesCp2kBaseWorkChain.get_protocol_inputs(inputs['cp2k_protocol'], inputs.get('cp2k'))
            cp2k = base['cp2k']
            builder.cp2k.max_iterations = orm.Int(base['max_iterations'])
            builder.cp2k.clean_workdir = orm.Bool(base['clean_workdir'])
            builder.cp2k.cp2k.code = code
            builder.cp2k.cp2k.parameters = orm.Dict(cp2k['parameters'])
            builder.cp2k.cp2k.settings = orm.Dict(cp2k['settings'])
            builder.cp2k.cp2k.metadata.options = {**cp2k['metadata']['options'], **(options or {})}
        else:
            if calculator is None:
                raise ValueError('The `ase` labeller needs a `calculator` description (import_path, kwargs...).')
            builder.ase.code = code
            builder.ase.calculator = orm.Dict(calculator)
            builder.ase.metadata.options = {'resources': {'num_machines': 1}, **(options or {})}
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
        self.ctx.queue = []
        for index, structure, charge, multiplicity in entries:
            reason = self._precheck(structure, charge, multiplicity)
            if reason:
                self.report(f'structure {index} excluded before labelling: {reason}')
                self.ctx.failures.append({'index': index, 'reason': f'refused: {reason}'})
            else:
                self.ctx.queue.append((index, structure, charge, multiplicity))
        self.ctx.batch = []

    def _precheck(self, structure, charge, multiplicity) -> str | None:
        """Return why the labeller would refuse ``structure`` (None if it can be labelled)."""
        return precheck_structure(structure.get_ase(), self.inputs, charge, multiplicity)

    def should_submit(self):
        """Return True while structures wait in the queue."""
        return bool(self.ctx.queue)

    def submit_batch(self):
        """Submit up to ``max_concurrent`` labelling processes and wait for all of them."""
        size = self.inputs.max_concurrent.value
        batch, self.ctx.queue = self.ctx.queue[:size], self.ctx.queue[size:]
        self.ctx.batch = []
        for index, structure, charge, multiplicity in batch:
            if self.ctx.labeller == 'cp2k':
                inputs = AttributeDict(self.exposed_inputs(LesCp2kBaseWorkChain, namespace='cp2k'))
                inputs.cp2k = AttributeDict(inputs.cp2k)
                inputs.cp2k.structure = structure
                process = LesCp2kBaseWorkChain
            else:
                inputs = AttributeDict(self.exposed_inputs(LesAseLabelCalculation, namespace='ase'))
                inputs.structure = structure
                process = LesAseLabelCalculation
            target = inputs.cp2k if self.ctx.labeller == 'cp2k' else inputs
            if charge is not None:
                target.total_charge = orm.Int(charge)
            if multiplicity is not None:
                target.multiplicity = orm.Int(multiplicity)
            inputs.metadata = {'call_link_label': f'label_{index:04d}'}
            node = self.submit(process, **inputs)
            self.report(f'submitted {node.process_label}<{node.pk}> for structure {index}')
            self.ctx.batch.append(index)
            self.to_context(**{f'label_{index:04d}': node})
        return ToContext()

    def inspect_batch(self):
        """Keep the labels of finished processes; record the reason of each failure."""
        for index in self.ctx.batch:
            node = self.ctx[f'label_{index:04d}']
            if node.is_finished_ok and 'labelled' in node.outputs:
                self.ctx.labelled[f'frame_{index:04d}'] = node.outputs.labelled
                continue
            reason = node.exit_message or f'{node.process_label} did not finish ({node.process_state.value})'
            self.report(f'structure {index} failed: {node.process_label}<{node.pk}> exit {node.exit_status}: {reason}')
            self.ctx.failures.append({'index': index, 'pk': node.pk, 'exit_status': node.exit_status, 'reason': reason})

    def results(self):
        """Merge the labels with a calcfunction; fail only when nothing was labelled."""
        report = {
            'n_requested': self.ctx.n_requested,
            'labeller': self.ctx.labeller,
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
