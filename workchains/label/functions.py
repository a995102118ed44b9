"""collect_labels: merge one-frame labelled datasets into one dataset and a report, as a calcfunction.

Being a calcfunction, the merge links every one-frame label (and so every DFT calculation) to the merged dataset in
the provenance graph.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData

__all__ = ('collect_labels',)


@calcfunction
def collect_labels(report: orm.Dict, **frames: LesDatasetData) -> dict:
    """Merge labelled one-frame datasets (keys ``frame_<index>``, sorted) and return them with the report.

    :param report: ``{'n_requested', 'failures': [{'index', 'reason', ...}], ...}`` from the workchain.
    :param frames: one-frame (or few-frame) labelled datasets; ``atoms.info['source_index']`` records the key index.
    :return: ``{'report': Dict}`` plus ``{'labelled': LesDatasetData}`` when at least one frame was labelled.
    :raises ValueError: if the frames mix levels of theory (LesDatasetData refuses it).
    """
    merged = []
    for key in sorted(frames):
        index = int(key.rsplit('_', 1)[-1])
        for atoms in frames[key].get_ase():
            atoms.info['source_index'] = index
            merged.append(atoms)
    summary = report.get_dict()
    summary['n_labelled'] = len(merged)
    summary['n_failed'] = len(summary.get('failures', []))
    outputs = {}
    if merged:
        dataset = LesDatasetData.from_ase(merged)
        summary['level_of_theory'] = dataset.level_of_theory
        outputs['labelled'] = dataset
    outputs['report'] = orm.Dict(summary)
    return outputs
