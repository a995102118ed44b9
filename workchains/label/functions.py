"""Calcfunctions of ``les.label``: unpack a dataset into StructureData, collect the labels into one dataset.

Being calcfunctions, they put every step in the provenance graph: dataset -> ``unpack_frames`` -> StructureData ->
labelling job -> one-frame label -> ``collect_labels`` -> labelled dataset.
"""

from __future__ import annotations

import ase
from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o

__all__ = ('collect_labels', 'frame_key', 'unpack_frames')


def frame_key(index: int) -> str:
    """Link label of frame ``index`` of a dataset to label (``frame_0003``)."""
    return f'frame_{index:04d}'


@calcfunction
def unpack_frames(dataset: LesDatasetData) -> dict[str, orm.StructureData]:
    """Return one StructureData per frame of ``dataset`` (numbers, positions and cell in Å, pbc), keyed by
    :func:`frame_key`; labels and ``info`` entries stay in the dataset.
    """
    outputs = {}
    for index, atoms in enumerate(dataset.get_ase()):
        clean = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        outputs[frame_key(index)] = orm.StructureData(ase=clean)
    return outputs


def _labelled_structure(label: LesDatasetData, job) -> orm.StructureData | None:
    """The StructureData ``job`` labelled into ``label``: its ``structure``, or for a batch job the structure under
    the key of the output (``labels.<key>`` comes from ``structures.<key>``).
    """
    if 'structure' in job.inputs:
        return job.inputs.structure
    link = label.base.links.get_incoming(node_class=type(job)).first()
    prefix = 'labels__'
    if link is None or not link.link_label.startswith(prefix):
        return None
    return job.inputs.structures[link.link_label[len(prefix) :]]


@calcfunction
def collect_labels(report: orm.Dict, requested: LesDatasetData | None = None, **frames: LesDatasetData) -> dict:
    """Merge labelled one-frame datasets (keys ``frame_<index>``, sorted) and return them with the report.

    Each labelled frame gets ``info['source_index']`` (the key index), the UUIDs of the job that labelled it and of
    the StructureData that job got (:data:`~aiida_les.provenance.origin.LABEL_JOB_UUID`, ``STRUCTURE_UUID``), and
    the origin entries of frame ``<index>`` of ``requested``.

    :param report: ``{'n_requested', 'failures': [{'index', 'reason', ...}], ...}`` from the workchain.
    :param requested: the unlabelled frames the workchain was given, if any (their origin entries are kept).
    :param frames: one-frame (or few-frame) labelled datasets, outputs of the labelling jobs.
    :return: ``{'report': Dict}`` plus ``{'labelled': LesDatasetData}`` when at least one frame was labelled.
    :raises ValueError: if the frames mix levels of theory (LesDatasetData refuses it).
    """
    origins = [o.origin_of(atoms.info) for atoms in requested.get_ase()] if requested is not None else []
    merged = []
    for key in sorted(frames):
        index = int(key.rsplit('_', 1)[-1])
        job = frames[key].creator
        for atoms in frames[key].get_ase():
            atoms.info['source_index'] = index
            if index < len(origins):
                atoms.info.update(origins[index])
            if job is not None:
                atoms.info[o.LABEL_JOB_UUID] = job.uuid
                structure = _labelled_structure(frames[key], job)
                if structure is not None:
                    atoms.info[o.STRUCTURE_UUID] = structure.uuid
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
