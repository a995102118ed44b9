"""Export a campaign: final committee, datasets, summary JSON and PNG plots, into one directory."""

from __future__ import annotations

import json
import pathlib

import numpy as np
from aiida import orm

from workchains.active_learning.history import campaign_history, generation_children
from workchains.active_learning.links import generation_link_like
from workchains.active_learning.record import UNITS, GenerationRecord

__all__ = ('export_campaign',)


def export_campaign(node: orm.WorkChainNode, directory: str | pathlib.Path) -> dict[str, pathlib.Path]:
    """Write what a campaign produced to ``directory`` and return ``{what: path}``.

    Files: ``model_<i>.pt`` (final committee), ``exported_model.pt`` (the committee as one metatomic model, for
    ASE, i-PI or LAMMPS; when the campaign exported it), ``dataset.extxyz``, ``validation.extxyz``, ``summary.json``,
    ``learning_curve.png`` (last generation, first member), ``error_vs_labels.png``, ``uncertainty.png``,
    ``calibration_NN.png`` (committee force deviation vs true error on the held-out set, per generation).
    Works on unfinished campaigns too: what does not exist yet is skipped.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, pathlib.Path] = {}
    outputs = node.outputs
    if 'models' in outputs:
        for label, model in sorted(outputs.models.items()):
            written[label] = _write(directory / f'model_{label.split("_")[-1]}.pt', model.get_content(mode='rb'))
    for name, filename in (
        ('dataset', 'dataset.extxyz'),
        ('validation_dataset', 'validation.extxyz'),
        ('exported_model', 'exported_model.pt'),
    ):
        if name in outputs:
            written[name] = _write(directory / filename, outputs[name].get_content(mode='rb'))
    history = campaign_history(node)
    summary = outputs.summary.get_dict() if 'summary' in outputs else {}
    rows = [record.stored() for record in history]  # without the per-frame deviations
    payload = {'pk': node.pk, 'uuid': node.uuid, 'state': node.process_state.value, **summary, 'history': rows}
    payload['units'] = UNITS
    written['summary'] = _write(directory / 'summary.json', json.dumps(payload, indent=2, default=str).encode())
    written.update(_plots(node, history, directory))
    return written


def _write(path: pathlib.Path, content: bytes) -> pathlib.Path:
    path.write_bytes(content)
    return path


def _plots(
    node: orm.WorkChainNode, history: list[GenerationRecord], directory: pathlib.Path
) -> dict[str, pathlib.Path]:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    written = {}
    curve = _last_learning_curve(node)
    if curve is not None:
        written['learning_curve'] = _write(directory / 'learning_curve.png', curve)
    for generation, steps in sorted(generation_children(node).items()):
        for evaluation in steps.get('evaluate', []):
            if evaluation.is_finished_ok and 'calibration_plot' in evaluation.outputs:
                content = evaluation.outputs.calibration_plot.get_content(mode='rb')
                name = f'calibration_{generation:02d}'
                written[name] = _write(directory / f'{name}.png', content)
    if history:
        sizes = [record.dataset_size for record in history]
        errors = [record.heldout_force_rmse_mev_per_ang for record in history]
        points = [(s, e) for s, e in zip(sizes, errors, strict=True) if s is not None and e is not None]
        figure, axis = plt.subplots(figsize=(5, 3.5))
        if points:
            axis.plot(*zip(*points, strict=True), 'o-')
        axis.set_xlabel('training frames after the generation')
        axis.set_ylabel('held-out force RMSE (meV/Å)')
        axis.set_title('Error vs labels')
        figure.tight_layout()
        figure.savefig(directory / 'error_vs_labels.png', dpi=120)
        plt.close(figure)
        written['error_vs_labels'] = directory / 'error_vs_labels.png'

        figure, axis = plt.subplots(figsize=(5, 3.5))
        for record in history:
            if record.force_std_ev_per_ang:
                values = np.clip(record.force_std_ev_per_ang, 1e-4, None)
                bins = np.logspace(-4, np.log10(values.max() * 1.1 + 1e-4), 30)
                axis.hist(values, bins=bins, histtype='step', label=f'generation {record.generation}')
        parameters = node.inputs.parameters.get_dict() if 'parameters' in node.inputs else {}
        for key in ('trust_lower', 'trust_upper'):
            if key in parameters:
                axis.axvline(parameters[key], color='k', linestyle='--', linewidth=0.8)
        axis.set_xscale('log')
        axis.set_xlabel('committee max force std (eV/Å)')
        axis.set_ylabel('explored frames')
        axis.set_title('Uncertainty of explored frames')
        if any(record.force_std_ev_per_ang for record in history):
            axis.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(directory / 'uncertainty.png', dpi=120)
        plt.close(figure)
        written['uncertainty'] = directory / 'uncertainty.png'
    return written


def _last_learning_curve(node: orm.WorkChainNode) -> bytes | None:
    query = orm.QueryBuilder().append(orm.WorkChainNode, filters={'id': node.pk}, tag='campaign')
    query.append(
        orm.WorkflowNode,
        with_incoming='campaign',
        edge_filters={'label': {'like': generation_link_like('train', 0)}},
        tag='train',
        project=['*'],
        edge_project=['label'],
    )
    rows = sorted(query.all(), key=lambda row: row[1])
    for train, _ in reversed(rows):
        if train.is_finished_ok and 'learning_curve' in train.outputs:
            return train.outputs.learning_curve.get_content(mode='rb')
    return None
