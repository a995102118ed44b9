"""Calcfunctions of the active-learning campaign: every dataset transformation is a node in the provenance graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o
from aiida_les.selection import perturbed_copies
from workchains.active_learning.record import GenerationRecord


@calcfunction
def generate_initial_frames(parameters: orm.Dict, **structures: orm.StructureData) -> LesDatasetData:
    """Seeds plus rattled and strained copies, unlabelled, to be labelled as the first training set.

    :param parameters: ``n_initial_copies`` (per seed), ``rattle`` (Å), ``max_strain`` (fraction), ``seed``;
        optional per-seed ``total_charges`` and ``multiplicities`` (dicts keyed like ``structures``).
    :return: unlabelled frames, each with its origin: ``origin='initial'``, the seed's UUID and label, and the copy
        index (0 for the seed itself).
    """
    settings = parameters.get_dict()
    frames = []
    for offset, (label, structure) in enumerate(sorted(structures.items())):
        atoms = structure.get_ase()
        atoms.info['total_charge'] = int(settings.get('total_charges', {}).get(label, 0))
        atoms.info['spin_multiplicity'] = int(settings.get('multiplicities', {}).get(label, 1))
        atoms.info['seed_label'] = label
        atoms.info.update({o.ORIGIN: 'initial', o.ORIGIN_UUID: structure.uuid, o.SEED: label, o.COPY: 0})
        copies = perturbed_copies(
            atoms,
            settings['n_initial_copies'],
            rattle=settings['rattle'],
            max_strain=settings['max_strain'],
            seed=settings['seed'] + offset,
        )
        for index, copy in enumerate(copies, start=1):
            copy.info[o.COPY] = index
        frames.extend([atoms, *copies])
    return LesDatasetData.from_ase(frames, filename='initial_frames.extxyz')


@calcfunction
def split_dataset(dataset: LesDatasetData, parameters: orm.Dict) -> dict[str, LesDatasetData]:
    """Split off a held-out validation set, deterministically by ``seed``.

    :param parameters: ``n_validation`` frames held out (at least one frame always stays for training), ``seed``.
    :returns: ``train`` and ``validation`` datasets.
    """
    frames = dataset.get_ase()
    n_validation = min(int(parameters['n_validation']), len(frames) - 1)
    if n_validation < 1:
        raise ValueError(f'Cannot hold out a validation set from {len(frames)} frame(s); label more initial frames.')
    order = np.random.default_rng(int(parameters['seed'])).permutation(len(frames))
    held_out = set(order[:n_validation].tolist())
    return {
        'train': LesDatasetData.from_ase(
            [f for i, f in enumerate(frames) if i not in held_out], filename='train.extxyz'
        ),
        'validation': LesDatasetData.from_ase(
            [f for i, f in enumerate(frames) if i in held_out], filename='validation.extxyz'
        ),
    }


@calcfunction
def summarise_campaign(stop_reason: orm.Str, final_models: orm.Dict | None = None, **generations: orm.Dict) -> orm.Dict:
    """Collect the per-generation records (``generation_00`` ..., stored :class:`.GenerationRecord`) and the reason the
    campaign stopped.

    :param final_models: what the final committee was trained on (``training_dataset_uuid``,
        ``n_frames_trained_on``) and the labelling-job UUIDs of the labels it has not seen.
    """
    rows = [generations[key].get_dict() for key in sorted(generations)]
    records = [GenerationRecord.from_stored(row) for row in rows]
    summary = {
        'stop_reason': stop_reason.value,
        'n_generations': len(rows),
        'n_labels_added': sum(record.n_labelled for record in records),
        'n_generations_without_labels': sum(bool(record.no_labels_added) for record in records),
        'generations': rows,
    }
    if final_models is not None:
        summary['final_models'] = final_models.get_dict()
    return orm.Dict(summary)
