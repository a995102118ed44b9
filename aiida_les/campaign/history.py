"""Read a campaign's history back from the provenance graph (works on running and killed campaigns too)."""

from __future__ import annotations

import re

import numpy as np
from aiida import orm
from aiida.common.links import LinkType

CAMPAIGN_PROCESS_TYPE = 'aiida.workflows:les.active_learning'
_LABEL = re.compile(r'generation_(\d+)_(train|md|evaluate|select|label|merge)')


def find_campaigns(limit: int = 50) -> list[orm.WorkChainNode]:
    """Return the newest campaigns first."""
    query = orm.QueryBuilder().append(
        orm.WorkChainNode, filters={'process_type': CAMPAIGN_PROCESS_TYPE}, tag='campaign'
    )
    return [row[0] for row in query.order_by({'campaign': {'ctime': 'desc'}}).limit(limit).all()]


def campaign_history(node: orm.WorkChainNode) -> list[dict]:
    """Return one row per generation, read from the called processes (so it works before the campaign ends).

    Keys: ``generation``, ``n_models``, ``train_forces_rmse`` (meV/Å, committee mean, validation set),
    ``n_md`` / ``n_md_failed``, ``n_frames``, ``force_std`` (array of per-frame committee force deviations, eV/Å),
    ``heldout_forces_rmse`` (meV/Å), ``accurate_fraction``, ``counts``, ``n_selected``, ``n_labelled``,
    ``n_label_failed``, ``dataset_size``.
    """
    rows: dict[int, dict] = {}
    for link in node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all():
        match = _LABEL.match(link.link_label)
        if not match:
            continue
        generation, kind = int(match.group(1)), match.group(2)
        row = rows.setdefault(generation, _empty_row(generation))
        _add(row, kind, link.node)
    for row in rows.values():
        row['force_std'] = np.asarray(row['force_std'], dtype=float)
    return [rows[key] for key in sorted(rows)]


def _empty_row(generation: int) -> dict:
    return {
        'generation': generation,
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
