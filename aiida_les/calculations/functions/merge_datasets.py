"""merge_datasets: concatenate labelled datasets into one LesDatasetData, recorded in the provenance graph."""

from __future__ import annotations

import re

from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData

__all__ = ('merge_datasets',)


def _natural_key(label: str) -> list:
    """Sort ``dataset_2`` before ``dataset_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', label)]


@calcfunction
def merge_datasets(**datasets: LesDatasetData) -> LesDatasetData:
    """Return one dataset holding the frames of all ``datasets``, in natural order of their link labels.

    Frames keep their labels (``info``/``arrays``); each gains ``info['source']``, the link label it came from, so a
    merged dataset can still be split by origin. Merging datasets of different levels of theory is refused (the
    :class:`~aiida_les.data.dataset.LesDatasetData` constructor raises ``ValueError``).

    :param datasets: the datasets to merge, keyword = link label, at least one.
    :return: a new LesDatasetData with ``sum(n_structures)`` frames.
    """
    if not datasets:
        raise ValueError('merge_datasets needs at least one dataset, got none.')
    frames = []
    for label in sorted(datasets, key=_natural_key):
        node = datasets[label]
        if not isinstance(node, LesDatasetData):
            raise TypeError(f'merge_datasets: `{label}` must be a LesDatasetData, got {type(node).__name__}.')
        for atoms in node.get_ase():
            atoms.info.setdefault('source', label)
            frames.append(atoms)
    return LesDatasetData.from_ase(frames)
