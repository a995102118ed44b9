"""Frame provenance inside a campaign: selected frames out of their trajectories, and labels the models have not seen.

The campaign labels :class:`~aiida.orm.StructureData` made by
:func:`~aiida_les.calculations.functions.extract_frames.extract_frames`, one call per trajectory, so the graph reads
trajectory -> ``extract_frames`` -> StructureData -> ``les.cp2k`` -> label -> ``collect_labels`` -> ``merge_datasets``.
"""

from __future__ import annotations

from aiida import orm

from aiida_les.calculations.functions.extract_frames import extract_frames
from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o
from workchains.active_learning.links import EXTRACT, generation_link
from workchains.label.functions import frame_key

__all__ = ('extract_selected', 'labels_not_trained_on')


def extract_selected(
    selected_sources: list[list], trajectories: dict[str, orm.TrajectoryData], generation: int
) -> dict[str, orm.StructureData]:
    """Return the StructureData of each selected frame, keyed ``frame_<i>`` in selection order.

    :param selected_sources: ``[candidate link label, frame index]`` per selected frame (``select_structures``'s
        report), in the order of its ``selected`` dataset.
    :param trajectories: the candidates given to ``select_structures``, by link label.
    :param generation: the campaign generation, for the call link labels.
    """
    requests: dict[str, dict[str, int]] = {}
    for position, (label, index) in enumerate(selected_sources):
        requests.setdefault(label, {})[frame_key(position)] = int(index)
    structures = {}
    for label, frames in sorted(requests.items()):
        structures.update(
            extract_frames(
                trajectory=trajectories[label],
                frames=orm.Dict(frames),
                metadata={'call_link_label': generation_link(generation, EXTRACT, label)},
            )
        )
    return structures


def labels_not_trained_on(dataset: LesDatasetData, trained_on: LesDatasetData) -> list[str]:
    """Return the labelling-job UUIDs of the frames of ``dataset`` that are not in ``trained_on``.

    Frames are told apart by the job that labelled them (:data:`~aiida_les.provenance.origin.LABEL_JOB_UUID`), never
    by their coordinates; a frame without one counts as unseen unless ``trained_on`` is the same node.
    """
    if dataset.uuid == trained_on.uuid:
        return []
    seen = {atoms.info.get(o.LABEL_JOB_UUID) for atoms in trained_on.get_ase()} - {None}
    unseen = [atoms.info.get(o.LABEL_JOB_UUID) for atoms in dataset.get_ase()]
    return [str(uuid) for uuid in unseen if uuid not in seen]
