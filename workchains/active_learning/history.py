"""Read a campaign's history back from the provenance graph (works on running and killed campaigns too).

A generation's steps are found by their call-link labels (:mod:`workchains.active_learning.links`) and summarised by
:func:`generation_record`, the one reader of a generation: the workchain's own ``summary`` rows, the rows a
continuation rebuilds and ``aiida-les campaign show`` all come from it.
"""

from __future__ import annotations

import re

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType

from workchains.active_learning.links import PROCESS_TYPES, RESTART_STATE_LINK, parse_generation_link
from workchains.active_learning.record import GenerationRecord

__all__ = (
    'campaign_history',
    'find_campaigns',
    'generation_children',
    'generation_record',
    'is_campaign',
    'previous_campaign',
    'restart_state',
)


def find_campaigns(limit: int = 50) -> list[orm.WorkChainNode]:
    """Return the newest campaigns first."""
    query = orm.QueryBuilder().append(
        orm.WorkChainNode, filters={'process_type': {'in': list(PROCESS_TYPES)}}, tag='campaign'
    )
    return [row[0] for row in query.order_by({'campaign': {'ctime': 'desc'}}).limit(limit).all()]


def is_campaign(node: orm.Node) -> bool:
    """Return whether ``node`` is a ``les.active_learning`` campaign."""
    return isinstance(node, orm.WorkChainNode) and node.process_type in PROCESS_TYPES


def generation_children(node: orm.WorkChainNode) -> dict[int, dict[str, list[orm.ProcessNode]]]:
    """Return ``{generation: {kind: [called processes]}}`` from the ``generation_NN_<kind>`` call-link labels.

    ``kind`` is one of :data:`~workchains.active_learning.links.KINDS`; processes of one kind are in call-link-label
    order (``train_0``, ``train_1``, ...).
    """
    found: dict[int, dict[str, list[tuple[str, orm.ProcessNode]]]] = {}
    for link in node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all():
        parsed = parse_generation_link(link.link_label)
        if parsed:
            generation, kind = parsed
            found.setdefault(generation, {}).setdefault(kind, []).append((link.link_label, link.node))
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


def campaign_history(node: orm.WorkChainNode, include_previous: bool = True) -> list[GenerationRecord]:
    """Return one record per generation, read from the called processes (so it works before the campaign ends).

    Each record carries the per-frame committee force deviations of its MD runs (``force_std_ev_per_ang``).

    :param include_previous: for a continued campaign, start with the generations of the campaign(s) it continues
        (those before its first generation), so the numbering runs on.
    """
    children = generation_children(node)
    own = [
        generation_record(generation, children[generation], node.pk, with_force_std=True)
        for generation in sorted(children)
    ]
    previous = previous_campaign(node) if include_previous else None
    if previous is None:
        return own
    start = int(restart_state(node).get('generation', 0))
    return [record for record in campaign_history(previous) if record.generation < start] + own


def generation_record(
    generation: int, steps: dict[str, list[orm.ProcessNode]], campaign: int, with_force_std: bool = False
) -> GenerationRecord:
    """Return the record of one generation from its called processes (``{kind: [processes]}``).

    Steps not run yet or failed leave their fields at the defaults. ``no_labels_added`` and ``stopping`` are the
    stopping rule's, which the workchain adds; they stay None here.

    :param campaign: PK of the campaign that ran the generation.
    :param with_force_std: also read every MD frame's committee force deviation (arrays of the trajectories).
    """
    trainings = steps.get('train', [])
    values = {'generation': generation, 'campaign_pk': campaign, 'n_models': len(trainings)}
    metrics = [training.outputs.metrics for training in _finished(trainings) if 'metrics' in training.outputs]
    finals = [metric.get('final', {}).get('valid', {}) for metric in metrics]  # meV/Å, as les-train writes it
    values['train_force_rmse_mev_per_ang'] = [float(valid['forces_rmse']) for valid in finals if 'forces_rmse' in valid]
    values.update(_exploration(steps.get('md', []), with_force_std))
    for evaluation in _finished(steps.get('evaluate', [])):
        errors = evaluation.outputs.metrics.get('errors', {})  # meV/Å and meV/atom, as les-eval writes them
        values['heldout_force_rmse_mev_per_ang'] = errors.get('forces_rmse')
        values['heldout_energy_rmse_mev_per_atom'] = errors.get('energy_per_atom_rmse')
        calibration = evaluation.outputs.metrics.get('calibration') or {}
        if calibration:
            values['force_std_scale'] = calibration.get('scale')
            for key in ('ence_raw', 'ence_calibrated', 'miscalibration_area_raw', 'miscalibration_area_calibrated'):
                values[key] = calibration.get(key)
    for select in _finished(steps.get('select', [])):
        report = select.outputs.report.get_dict()
        values.update({key: report.get(key) for key in ('n_frames', 'accurate_fraction')})
        values['counts'] = report.get('counts', {})
        values['n_selected'] = select.outputs.selected.n_structures if 'selected' in select.outputs else 0
    for label in steps.get('label', []):
        report = label.outputs.report.get_dict() if 'report' in label.outputs else {}  # also of a failed labelling
        values['n_label_failed'] = report.get('n_failed', 0)
        values['label_failures'] = report.get('failures', [])
        if label.is_finished_ok and 'labelled' in label.outputs:
            values['n_labelled'] = label.outputs.labelled.n_structures
    for split in _finished(steps.get('split', [])):
        values['n_heldout_added'] = split.outputs.validation.n_structures
    for merge in _finished(steps.get('merge', [])):
        values['dataset_size'] = merge.outputs.result.n_structures
    for merge in _finished(steps.get('heldout', [])):
        values['heldout_size'] = merge.outputs.result.n_structures
    return GenerationRecord(**values)


def _exploration(runs: list[orm.ProcessNode], with_force_std: bool) -> dict:
    """MD runs started, failed (or left no trajectory), stopped by uncertainty; optionally each frame's deviation."""
    finished = [run for run in _finished(runs) if 'trajectory' in run.outputs]
    outputs = [run.outputs.output_parameters for run in finished if 'output_parameters' in run.outputs]
    stopped = [parameters.get('stopped_by_uncertainty') for parameters in outputs]
    force_std = []
    for run in finished if with_force_std else []:
        if 'max_force_std' in run.outputs.trajectory.get_arraynames():
            force_std.extend(run.outputs.trajectory.get_array('max_force_std').tolist())
    return {
        'n_md_runs': len(runs),
        'n_md_failed': len(runs) - len(finished),
        'n_md_stopped_by_uncertainty': sum(bool(value) for value in stopped),
        'force_std_ev_per_ang': force_std,
    }


def _finished(processes: list[orm.ProcessNode]) -> list[orm.ProcessNode]:
    return [process for process in processes if process.is_finished_ok]
