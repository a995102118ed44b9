"""Read a campaign's history back from the provenance graph (works on running and killed campaigns too)."""

from __future__ import annotations

import re

import numpy as np
from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType

# The entry point `les.active_learning` names the package, not the module that defines the class, so AiiDA records the
# class path as process type; match both spellings (the entry-point one is what a fixed entry point records).
CAMPAIGN_PROCESS_TYPES = (
    'aiida.workflows:les.active_learning',
    'workchains.active_learning.workchain.LesActiveLearningWorkChain',
)
_LABEL = re.compile(r'generation_(\d+)_(train|md|evaluate|select|label|merge)')
# A continued campaign names its predecessor here (``restart.state`` input, key ``previous_campaign``: a UUID).
RESTART_STATE_LINK = 'restart__state'


def find_campaigns(limit: int = 50) -> list[orm.WorkChainNode]:
    """Return the newest campaigns first."""
    query = orm.QueryBuilder().append(
        orm.WorkChainNode, filters={'process_type': {'in': list(CAMPAIGN_PROCESS_TYPES)}}, tag='campaign'
    )
    return [row[0] for row in query.order_by({'campaign': {'ctime': 'desc'}}).limit(limit).all()]


def is_campaign(node: orm.Node) -> bool:
    """Return whether ``node`` is a ``les.active_learning`` campaign."""
    return isinstance(node, orm.WorkChainNode) and node.process_type in CAMPAIGN_PROCESS_TYPES


def generation_children(node: orm.WorkChainNode) -> dict[int, dict[str, list[orm.ProcessNode]]]:
    """Return ``{generation: {kind: [called processes]}}`` from the ``generation_NN_<kind>`` call-link labels.

    ``kind`` is one of ``train``, ``md``, ``evaluate``, ``select``, ``label``, ``merge``; processes of one kind are in
    call-link-label order (``train_0``, ``train_1``, ...).
    """
    found: dict[int, dict[str, list[tuple[str, orm.ProcessNode]]]] = {}
    for link in node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all():
        match = _LABEL.match(link.link_label)
        if match:
            kinds = found.setdefault(int(match.group(1)), {})
            kinds.setdefault(match.group(2), []).append((link.link_label, link.node))
    return {
        generation: {kind: [process for _, process in sorted(pairs, key=_natural)] for kind, pairs in kinds.items()}
        for generation, kinds in found.items()
    }


def _natural(pair: tuple[str, orm.ProcessNode]) -> list:
    """Sort ``train_2`` before ``train_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', pair[0])]


def restart_state(node: orm.WorkChainNode) -> dict:
    """Return the ``restart.state`` dictionary a continued campaign was started with (empty for a fresh one)."""
    links = node.base.links.get_incoming(link_label_filter=RESTART_STATE_LINK).all()
    return links[0].node.get_dict() if links else {}


def previous_campaign(node: orm.WorkChainNode) -> orm.WorkChainNode | None:
    """Return the campaign that ``node`` continues, or None (also when that node was deleted)."""
    uuid = restart_state(node).get('previous_campaign')
    if not uuid:
        return None
    try:
        return orm.load_node(uuid)
    except NotExistent:  # deleted since: the history starts with this campaign
        return None


def campaign_history(node: orm.WorkChainNode, include_previous: bool = True) -> list[dict]:
    """Return one row per generation, read from the called processes (so it works before the campaign ends).

    Keys: ``generation``, ``n_models``, ``train_forces_rmse`` (meV/Å, committee mean, validation set),
    ``n_md`` / ``n_md_failed``, ``n_frames``, ``force_std`` (array of per-frame committee force deviations, eV/Å),
    ``heldout_forces_rmse`` (meV/Å), ``accurate_fraction``, ``counts``, ``n_selected``, ``n_labelled``,
    ``n_label_failed``, ``dataset_size``, ``campaign`` (pk of the campaign that ran the generation).

    :param include_previous: for a continued campaign, start with the generations of the campaign(s) it continues
        (those before its first generation), so the numbering runs on.
    """
    children = generation_children(node)
    own = [generation_row(generation, children[generation], node.pk) for generation in sorted(children)]
    previous = previous_campaign(node) if include_previous else None
    if previous is None:
        return own
    start = int(restart_state(node).get('generation', 0))
    return [row for row in campaign_history(previous) if row['generation'] < start] + own


def generation_row(generation: int, kinds: dict[str, list[orm.ProcessNode]], campaign: int) -> dict:
    """Return the history row (keys as in :func:`campaign_history`) of one generation's called processes."""
    row = _empty_row(generation, campaign)
    for kind, processes in kinds.items():
        for process in processes:
            _add(row, kind, process)
    row['force_std'] = np.asarray(row['force_std'], dtype=float)
    return row


def _empty_row(generation: int, campaign: int) -> dict:
    return {
        'generation': generation,
        'campaign': campaign,
        'n_models': 0,
        'train_forces_rmse': [],
        'n_md': 0,
        'n_md_failed': 0,
        'n_frames': 0,
        'force_std': [],
        'heldout_forces_rmse': None,
        'accurate_fraction': None,
        'counts': {},
        'n_selected': 0,
        'n_labelled': 0,
        'n_label_failed': 0,
        'dataset_size': None,
    }


def _add(row: dict, kind: str, process: orm.ProcessNode) -> None:
    outputs = process.outputs if process.is_finished_ok else None
    if kind == 'train':
        row['n_models'] += 1
        if outputs is not None and 'metrics' in outputs:
            valid = outputs.metrics.get('final', {}).get('valid', {})
            if 'forces_rmse' in valid:
                row['train_forces_rmse'].append(float(valid['forces_rmse']))
    elif kind == 'md':
        row['n_md'] += 1
        if outputs is None or 'trajectory' not in outputs:
            row['n_md_failed'] += 1
            return
        trajectory = outputs.trajectory
        if 'max_force_std' in trajectory.get_arraynames():
            values = trajectory.get_array('max_force_std')
            row['force_std'].extend(values.tolist())
            row['n_frames'] += len(values)
    elif kind == 'evaluate' and outputs is not None:
        row['heldout_forces_rmse'] = outputs.metrics.get('errors', {}).get('forces_rmse')
    elif kind == 'select' and outputs is not None:
        report = outputs.report.get_dict()
        row['accurate_fraction'] = report.get('accurate_fraction')
        row['counts'] = report.get('counts', {})
        row['n_selected'] = outputs.selected.n_structures if 'selected' in outputs else 0
    elif kind == 'label':
        report = process.outputs.report.get_dict() if 'report' in process.outputs else {}
        row['n_label_failed'] = report.get('n_failed', 0)
        if outputs is not None and 'labelled' in outputs:
            row['n_labelled'] = outputs.labelled.n_structures
    elif kind == 'merge' and outputs is not None:
        row['dataset_size'] = outputs.result.n_structures
