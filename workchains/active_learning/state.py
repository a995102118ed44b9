"""What a campaign leaves to continue from: datasets, committee, generation counter, labels used and history.

A finished campaign hands over its outputs. A campaign that did not finish (killed, excepted, failed, or whose process
died and is still marked running) hands over what its finished child processes produced, found through the
provenance graph: the held-out and training sets of the initial split, the dataset of its last complete generation
(the last ``generation_NN_merge``), the held-out set as that generation left it (``generation_NN_heldout``) and the
committee trained in that generation. A generation counts as complete when its selection finished and, if something
was selected, its labelling finished and was merged (or finished with every label failed). Work of an interrupted
generation is not handed over: with caching enabled, the continuation gets its finished calculations back from the
cache.
"""

from __future__ import annotations

import dataclasses

from aiida import orm
from aiida.common.links import LinkType

from workchains.active_learning.history import generation_children, generation_record, is_campaign, restart_state
from workchains.active_learning.links import SPLIT_INITIAL
from workchains.active_learning.record import INTERRUPTED, GenerationRecord, count_labels_used

__all__ = ('INTERRUPTED', 'CampaignState', 'campaign_state')


@dataclasses.dataclass
class CampaignState:
    """Everything a new ``les.active_learning`` run needs to continue ``campaign``.

    :param campaign: the campaign node it was read from.
    :param generation: the next generation to run (0-based; the generations before it are done).
    :param labels_used: DFT labels the lineage of campaigns has spent so far, initial frames included.
    :param statistics: one stored :class:`~workchains.active_learning.record.GenerationRecord` per generation done,
        oldest first (as the ``summary`` output holds them).
    :param dataset: the training set after the last complete generation, or None when nothing was labelled yet.
    :param validation_dataset: the held-out DFT set, or None.
    :param models: the committee trained in the last complete generation (``member_<i>`` -> LesModelData), or empty.
    :param reused: what is reused, one short phrase per item (for report lines).
    """

    campaign: orm.WorkChainNode
    generation: int = 0
    labels_used: int = 0
    statistics: list[dict] = dataclasses.field(default_factory=list)
    dataset: orm.Data | None = None
    validation_dataset: orm.Data | None = None
    models: dict[str, orm.Data] = dataclasses.field(default_factory=dict)
    reused: list[str] = dataclasses.field(default_factory=list)

    def as_restart_state(self) -> dict:
        """Return the JSON-serialisable ``restart.state`` input of the continuing campaign."""
        return {
            'previous_campaign': self.campaign.uuid,
            'previous_pk': self.campaign.pk,
            'generation': self.generation,
            'labels_used': self.labels_used,
            'statistics': self.statistics,
            'reused': self.reused,
        }

    def describe(self) -> str:
        """One line saying what a continuation reuses."""
        if not self.reused:
            return f'nothing finished to reuse from campaign {self.campaign.pk}'
        return f'from campaign {self.campaign.pk}: ' + '; '.join(self.reused)


def campaign_state(node: orm.WorkChainNode) -> CampaignState:
    """Return what ``node`` (a ``les.active_learning`` campaign in any process state) leaves to continue from.

    :raises ValueError: if ``node`` is not a ``les.active_learning`` campaign.
    """
    if not is_campaign(node):
        kind = getattr(node, 'process_label', None) or type(node).__name__
        raise ValueError(f'Node {node.pk} is a {kind}, not a les.active_learning campaign; cannot continue it.')
    state = _from_inputs(node)
    before, n_initial = state.labels_used, _add_initial_split(node, state)
    records = []
    for generation, steps in sorted(generation_children(node).items()):
        if not _complete(steps):
            interrupted = generation
            break
        records.append(_add_generation(generation, steps, node.pk, state))
    else:
        interrupted = None
    state.labels_used = count_labels_used(before, n_initial, records)
    done = [record.generation for record in records]
    if done:
        state.reused.append(
            f'generation{"s" if len(done) > 1 else ""} {_span(done)}: dataset<{state.dataset.pk}> of '
            f'{state.dataset.n_structures} frames, the committee of generation {done[-1]} '
            f'({len(state.models)} models)'
        )
    if interrupted is not None:
        state.reused.append(
            f'not generation {interrupted}, which did not complete: it runs again (its finished calculations come '
            'back from the cache when caching is enabled)'
        )
    if node.is_finished_ok and 'summary' in node.outputs:
        # The campaign's own rows are more complete (stopping messages) than rows rebuilt from the graph.
        state.statistics = node.outputs.summary.get_dict()['generations']
        state.dataset, state.validation_dataset = node.outputs.dataset, node.outputs.validation_dataset
        state.models = dict(sorted(node.outputs.models.items()))
    return state


def _from_inputs(node: orm.WorkChainNode) -> CampaignState:
    """Start from what the campaign itself was given: a starting dataset, or the state of the campaign it continued."""
    inputs = node.base.links.get_incoming(link_type=LinkType.INPUT_WORK).nested()
    base = restart_state(node)
    state = CampaignState(
        campaign=node,
        generation=int(base.get('generation', 0)),
        labels_used=int(base.get('labels_used', 0)),
        statistics=list(base.get('statistics', [])),
        dataset=inputs.get('dataset'),
        validation_dataset=inputs.get('validation_dataset'),
        models=dict(inputs.get('restart', {}).get('models', {})),
    )
    if base:
        state.reused.append(
            f'generations before {state.generation}, which campaign {node.pk} continued from campaign '
            f'{base.get("previous_pk")}'
        )
    elif state.dataset is not None:
        state.reused.append(f'its input dataset<{state.dataset.pk}>')
    return state


def _add_initial_split(node: orm.WorkChainNode, state: CampaignState) -> int:
    """Take the initial training and held-out sets; return how many initial labels they hold (0 if not split)."""
    links = node.base.links.get_outgoing(link_type=LinkType.CALL_CALC, link_label_filter=SPLIT_INITIAL).all()
    split = links[0].node if links else None
    if split is None or not split.is_finished_ok:
        return 0
    state.dataset, state.validation_dataset = split.outputs.train, split.outputs.validation
    n_train, n_held_out = state.dataset.n_structures, state.validation_dataset.n_structures
    state.reused.append(f'initial labels ({n_train} training, {n_held_out} held-out frames)')
    return n_train + n_held_out


def _complete(kinds: dict[str, list[orm.ProcessNode]]) -> bool:
    """Selection done and, when something was selected, labels merged (or labelling finished with all failed)."""
    trainings = kinds.get('train', [])
    if not trainings or not all(node.is_finished_ok and 'model' in node.outputs for node in trainings):
        return False
    selects = kinds.get('select', [])
    if not selects or not selects[0].is_finished_ok:
        return False
    if 'selected' not in selects[0].outputs:
        return True
    labels = kinds.get('label', [])
    if not labels or not labels[0].is_finished:  # killed or excepted labelling is redone, not counted as failed
        return False
    if not labels[0].is_finished_ok:
        return True
    merges = kinds.get('merge', [])
    return bool(merges) and merges[0].is_finished_ok


def _add_generation(
    generation: int, steps: dict[str, list[orm.ProcessNode]], campaign: int, state: CampaignState
) -> GenerationRecord:
    """Take the dataset and committee of a complete generation and its record (stopping rule not evaluated)."""
    state.models = {f'member_{index}': training.outputs.model for index, training in enumerate(steps['train'])}
    merges = steps.get('merge', [])
    if merges:
        state.dataset = merges[0].outputs.result
    held_out = steps.get('heldout', [])
    if held_out and held_out[0].is_finished_ok:
        state.validation_dataset = held_out[0].outputs.result
    state.generation = generation + 1
    record = generation_record(generation, steps, campaign).model_copy(update={'stopping': INTERRUPTED})
    state.statistics.append(record.stored())
    return record


def _span(generations: list[int]) -> str:
    return str(generations[0]) if len(generations) == 1 else f'{generations[0]}-{generations[-1]}'
