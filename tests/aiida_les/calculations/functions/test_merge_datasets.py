"""Tests for the :func:`aiida_les.calculations.functions.merge_datasets.merge_datasets` calcfunction."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_les.calculations.functions.merge_datasets import merge_datasets
from aiida_les.data.dataset import LesDatasetData


def _dataset(n_frames: int, energy: float, level: str | None = None) -> LesDatasetData:
    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(0.01, seed=index)
        atoms.calc = SinglePointCalculator(atoms, energy=energy + index, forces=np.zeros((8, 3)))
        if level:
            atoms.info['level_of_theory'] = level
        frames.append(atoms)
    return LesDatasetData.from_ase(frames)


def test_merge_order_labels_and_provenance():
    parts = {'dataset_10': _dataset(1, 100.0), 'dataset_2': _dataset(2, 20.0), 'dataset_1': _dataset(1, 10.0)}
    merged, node = merge_datasets.run_get_node(**parts)
    assert node.is_finished_ok
    assert merged.n_structures == 4
    frames = merged.get_ase()
    # natural order of the labels: dataset_1, dataset_2, dataset_10
    assert [atoms.info['source'] for atoms in frames] == ['dataset_1', 'dataset_2', 'dataset_2', 'dataset_10']
    assert [atoms.get_potential_energy() for atoms in frames] == pytest.approx([10.0, 20.0, 21.0, 100.0])
    assert sorted(node.base.links.get_incoming().all_link_labels()) == ['dataset_1', 'dataset_10', 'dataset_2']
    assert {'energy', 'forces'} <= set(merged.labels)


def test_mixed_levels_of_theory_refused():
    with pytest.raises(ValueError, match='must not mix levels of theory'):
        merge_datasets(a=_dataset(1, 0.0, 'PBE'), b=_dataset(1, 0.0, 'GFN1-xTB'))


def test_merge_keeps_frame_origins():
    """Origin and labelling-job entries of each frame survive a merge unchanged."""
    first, second = _dataset(1, 0.0), _dataset(1, 1.0)
    frames = []
    for node, origin in (
        (first, {'origin': 'initial', 'origin_copy': 0}),
        (second, {'origin': 'md', 'origin_md_step': 7}),
    ):
        atoms = node.get_ase()[0]
        atoms.info.update(origin, label_job_uuid=f'job-{origin["origin"]}', source='generation_00_label')
        frames.append(LesDatasetData.from_ase([atoms]))
    merged = merge_datasets(dataset_0=frames[0], dataset_1=frames[1]).get_ase()
    assert [atoms.info['origin'] for atoms in merged] == ['initial', 'md']
    assert merged[1].info['origin_md_step'] == 7
    assert [atoms.info['label_job_uuid'] for atoms in merged] == ['job-initial', 'job-md']
    assert [atoms.info['source'] for atoms in merged] == ['generation_00_label'] * 2
