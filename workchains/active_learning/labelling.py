"""The labelling steps of ``les.active_learning``: initial frames, selected frames, and merging their labels.

A mixin of :class:`~workchains.active_learning.workchain.LesActiveLearningWorkChain` (its outline calls these
steps). Every frame is labelled by ``les.label`` from a StructureData that a calcfunction made (``unpack_frames``
for the initial frames, ``extract_frames`` for the selected MD frames), at the total charge and multiplicity the frame
carries. A generation whose selected frames all fail to label is a warning, counted by the stopping rule.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext
from aiida.plugins import WorkflowFactory

from aiida_les.calculations.functions.merge_datasets import merge_datasets
from aiida_les.data.dataset import LesDatasetData
from workchains.active_learning.functions import generate_initial_frames, split_dataset
from workchains.active_learning.links import INITIAL_FRAMES, INITIAL_LABELS, SPLIT_INITIAL, generation_link

__all__ = ('CampaignLabellingMixin', 'heldout_count')

LesLabelWorkChain = WorkflowFactory('les.label')


def heldout_count(n_labels: int, fraction: float) -> int:
    """Return how many of a generation's ``n_labels`` new labels go to the held-out set.

    ``round(fraction * n_labels)``, at least one when ``fraction > 0`` and the generation labelled two or more frames
    (a single label goes to training: a generation that adds nothing to training would repeat itself).
    """
    if fraction <= 0 or n_labels < 2:
        return 0
    return min(n_labels - 1, max(1, round(fraction * n_labels)))


class CampaignLabellingMixin:
    """Outline steps of the campaign that label frames and merge the labels into its dataset."""

    def should_label_initial_frames(self):
        """Label seeds and perturbed copies when no dataset was given."""
        return 'dataset' not in self.inputs

    def label_initial_frames(self):
        """Generate perturbed copies of the seeds and label them."""
        keys = ('n_initial_copies', 'rattle', 'max_strain', 'seed', 'total_charges', 'multiplicities')
        settings = orm.Dict({key: self.ctx.parameters[key] for key in keys})
        frames = generate_initial_frames(
            parameters=settings, **self.inputs.structures, metadata={'call_link_label': INITIAL_FRAMES}
        )
        self.report(f'labelling {frames.n_structures} initial frames (seeds + perturbed copies)')
        return ToContext(initial_labels=self._submit_label(frames, INITIAL_LABELS))

    def inspect_initial_labels(self):
        """Split the labelled initial frames into training and held-out sets."""
        labels = self.ctx.initial_labels
        if not labels.is_finished_ok:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_LABEL.format(message=f'initial labels, pk {labels.pk}')
        dataset = labels.outputs.labelled
        self.ctx.n_initial_labels = dataset.n_structures
        split = split_dataset(
            dataset,
            orm.Dict({'n_validation': self.ctx.parameters.n_validation, 'seed': self.ctx.parameters.seed}),
            metadata={'call_link_label': SPLIT_INITIAL},
        )
        self.ctx.dataset, self.ctx.validation_dataset = split['train'], split['validation']
        self.report(
            f'initial dataset: {self.ctx.dataset.n_structures} training and '
            f'{self.ctx.validation_dataset.n_structures} held-out frames'
        )
        if self.ctx.validation_dataset.n_structures < self.ctx.parameters.n_validation:
            # Inputs were checked to fit; only labels that failed can shrink the held-out set.
            self.report(
                f'WARNING: only {dataset.n_structures} initial frames were labelled, so '
                f'{self.ctx.validation_dataset.n_structures} are held out instead of n_validation '
                f'{self.ctx.parameters.n_validation}'
            )
        return None

    def has_candidates(self):
        """Label only when something was selected."""
        return self.ctx.candidates is not None

    def label_candidates(self):
        """Label the selected frames with the campaign's (single) level of theory."""
        label = generation_link(self.ctx.generation, 'label')
        charges = sorted({int(atoms.info.get('total_charge', 0)) for atoms in self.ctx.candidates.get_ase()})
        self.report(
            f'generation {self.ctx.generation}: labelling {self.ctx.candidates.n_structures} selected frames at total '
            f'charge {", ".join(map(str, charges))} e'
        )
        return ToContext(labels=self._submit_label(self.ctx.candidates, label, self.ctx.candidate_structures))

    def inspect_labels(self):
        """Merge the new labels into the training and held-out sets; failed labels are excluded with their reasons.

        ``heldout_fraction`` of the labels (:func:`heldout_count`) go to the held-out set, so that the held-out error,
        the calibration of the uncertainty and the stopping rule measure the MD distribution the campaign explores,
        not only the perturbed seeds. The generation's record (:meth:`check_convergence`) reads the labels, the split
        and the failures back from these steps.
        """
        node = self.ctx.labels
        if not node.is_finished_ok:
            self._warn_no_labels(node)
            return
        generation = self.ctx.generation
        labelled = node.outputs.labelled
        self.ctx.unlabelled_generations = 0
        n_heldout = heldout_count(labelled.n_structures, self.ctx.parameters.heldout_fraction)
        training = labelled
        if n_heldout:
            seed = int(self.ctx.parameters.seed) + 1000 * generation
            split = split_dataset(
                labelled,
                orm.Dict({'n_validation': n_heldout, 'seed': seed}),
                metadata={'call_link_label': generation_link(generation, 'split')},
            )
            training = split['train']
            held_out = {'dataset_1': split['validation']}
            if self.ctx.validation_dataset is not None:
                held_out['dataset_0'] = self.ctx.validation_dataset
            self.ctx.validation_dataset = merge_datasets(
                **held_out, metadata={'call_link_label': generation_link(generation, 'heldout')}
            )
        self.ctx.dataset = merge_datasets(
            dataset_0=self.ctx.dataset,
            dataset_1=training,
            metadata={'call_link_label': generation_link(generation, 'merge')},
        )
        self.report(
            f'generation {generation}: {labelled.n_structures} labels added: {training.n_structures} to training '
            f'(now {self.ctx.dataset.n_structures} frames), {n_heldout} to the held-out set (now '
            f'{self.ctx.validation_dataset.n_structures} frames)'
        )
        return

    def _warn_no_labels(self, node) -> None:
        """A generation whose selected frames were all refused or failed: a warning, counted by the stopping rule."""
        self.ctx.unlabelled_generations += 1
        report = node.outputs.report.get_dict() if 'report' in node.outputs else {}
        reasons = sorted({str(item.get('reason', '?'))[:120] for item in report.get('failures', [])})
        self.logger.warning(
            f'generation {self.ctx.generation}: none of the {self.ctx.candidates.n_structures} selected frames could '
            f'be labelled ({node.process_label}<{node.pk}> exit {node.exit_status}); no labels added. Reasons: '
            f'{"; ".join(reasons) or node.exit_message}'
        )

    def _submit_label(self, frames: LesDatasetData, call_link_label: str, structures: dict | None = None):
        inputs = AttributeDict(self.exposed_inputs(LesLabelWorkChain, namespace='label'))
        inputs.dataset = frames
        if structures:
            inputs.structures = structures
        inputs.metadata = {'call_link_label': call_link_label}
        return self.submit(LesLabelWorkChain, **inputs)
