"""Provenance queries of a campaign, written as QueryBuilder recipes (the README's "Provenance queries" section).

Each function is one recipe a user can copy: it starts from a node the user holds (a model, a dataset frame, a
dataset), walks links with :class:`~aiida.orm.QueryBuilder`, and uses the frame's origin entries
(:mod:`aiida_les.provenance.origin`) only to pick the right node among the linked ones, never coordinates.
"""

from __future__ import annotations

import typing as t

from aiida import orm

from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o

__all__ = ('dft_jobs_of_model', 'dft_settings_of_dataset', 'frame_origin', 'training_dataset_of_model')

CP2K_PROCESS_TYPE = 'aiida.calculations:les.cp2k'
LABEL_PROCESS_TYPES = (CP2K_PROCESS_TYPE, 'aiida.calculations:les.ase_label')


def training_dataset_of_model(model: orm.Data) -> LesDatasetData:
    """Return the dataset ``model`` was trained on: model <- ``les.train`` job <- its ``dataset`` input.

    :raises ValueError: if ``model`` was not created by a training job with a ``dataset`` input.
    """
    qb = orm.QueryBuilder()
    qb.append(orm.Data, filters={'id': model.pk}, tag='model')
    qb.append(orm.CalcJobNode, with_outgoing='model', tag='train')
    qb.append(LesDatasetData, with_outgoing='train', edge_filters={'label': 'dataset'}, project='*')
    found = qb.all(flat=True)
    if len(found) != 1:
        raise ValueError(f'Node {model.pk} was not trained by a les.train job on one dataset (found {len(found)}).')
    return found[0]


def dft_jobs_of_model(model: orm.Data) -> list[orm.CalcJobNode]:
    """Which DFT jobs fed this model: the labelling job of every frame of its training dataset, in frame order.

    :return: one ``les.cp2k`` (or ``les.ase_label``) job per training frame; a job repeats only if it labelled
        several frames.
    :raises ValueError: if a frame names no labelling job, or one that is not in the profile.
    """
    frames = training_dataset_of_model(model).get_ase()
    uuids = [atoms.info.get(o.LABEL_JOB_UUID) for atoms in frames]
    if None in uuids:
        raise ValueError(f'Frame {uuids.index(None)} of the training set names no labelling job.')
    qb = orm.QueryBuilder()
    qb.append(orm.CalcJobNode, filters={'uuid': {'in': sorted(set(uuids))}}, project=['uuid', '*'])
    jobs = dict(qb.all())
    missing = sorted(set(uuids) - set(jobs))
    if missing:
        raise ValueError(f'Labelling jobs {missing[:3]} named by the training frames are not in this profile.')
    return [jobs[uuid] for uuid in uuids]


def frame_origin(dataset: LesDatasetData, index: int) -> dict[str, t.Any]:
    """Where frame ``index`` of ``dataset`` came from, following links from the job that labelled it.

    labelling job <- its ``structure`` input <- the calcfunction that made it (``extract_frames`` from one MD
    trajectory, or ``unpack_frames`` from the initial frames) <- the trajectory (and the MD job that wrote it) or the
    initial-frames dataset (and the seed structures).

    :return: ``label_job``, ``structure``, ``extracted_by`` (the calcfunction node), ``trajectory`` and ``md_job``
        (None for initial frames), ``seed`` (the seed StructureData for initial frames, else the MD start), and the
        frame's origin entries (``origin``, ``origin_generation``, ``origin_md_step``, ...).
    """
    info = o.origin_of(dataset.get_ase()[index].info)
    qb = orm.QueryBuilder()
    qb.append(orm.CalcJobNode, filters={'uuid': info[o.LABEL_JOB_UUID]}, tag='job', project='*')
    qb.append(orm.StructureData, with_outgoing='job', edge_filters={'label': 'structure'}, tag='structure', project='*')
    qb.append(orm.CalcFunctionNode, with_outgoing='structure', tag='maker', project='*')
    job, structure, maker = qb.one()
    result = {'label_job': job, 'structure': structure, 'extracted_by': maker, 'trajectory': None, 'md_job': None}
    if info.get(o.ORIGIN) == 'md':
        trajectory = (
            orm.QueryBuilder()
            .append(orm.CalcFunctionNode, filters={'id': maker.pk}, tag='maker')
            .append(orm.TrajectoryData, with_outgoing='maker', project='*')
            .one()[0]
        )
        result.update(trajectory=trajectory, md_job=trajectory.creator, seed=trajectory.creator.inputs.structure)
    elif info.get(o.ORIGIN) == 'initial':
        result['seed'] = orm.load_node(info[o.ORIGIN_UUID])
    result.update(info)
    return result


def dft_settings_of_dataset(dataset: LesDatasetData) -> dict[str, t.Any]:
    """The exact DFT settings behind ``dataset``: level of theory, the ``parameters`` and code of its labelling jobs.

    :return: ``level_of_theory`` (the dataset's), ``n_jobs``, ``parameters`` (the distinct ``parameters`` Dicts given
        to the jobs: protocol, method, basis sets, cutoffs, sections; ``calculator`` for ASE labels),
        ``total_charges`` and ``multiplicities`` used, ``codes`` (full labels) and ``input_file`` (the CP2K input one
        job ran, after any convergence correction; corrections never change what is computed).
    """
    uuids = sorted({atoms.info[o.LABEL_JOB_UUID] for atoms in dataset.get_ase() if o.LABEL_JOB_UUID in atoms.info})
    qb = orm.QueryBuilder()
    qb.append(orm.CalcJobNode, filters={'uuid': {'in': uuids}}, tag='job', project='*')
    # CP2K jobs take their settings as `parameters`, ASE-calculator jobs as `calculator`.
    settings_inputs = {'label': {'in': ['parameters', 'calculator']}}
    qb.append(orm.Dict, with_outgoing='job', edge_filters=settings_inputs, project='attributes')
    rows = qb.all()
    parameters = []
    for _, attributes in rows:
        if attributes not in parameters:
            parameters.append(attributes)
    jobs = [job for job, _ in rows]
    settings = {
        'level_of_theory': dataset.level_of_theory,
        'n_jobs': len(jobs),
        'parameters': parameters,
        'total_charges': sorted({job.inputs.total_charge.value for job in jobs if 'total_charge' in job.inputs}),
        'multiplicities': sorted({job.inputs.multiplicity.value for job in jobs if 'multiplicity' in job.inputs}),
        'codes': sorted({job.inputs.code.full_label for job in jobs}),
        'input_file': None,
    }
    cp2k = [job for job in jobs if job.process_type == CP2K_PROCESS_TYPE and 'retrieved' in job.outputs]
    if cp2k:
        settings['input_file'] = cp2k[0].outputs.retrieved.base.repository.get_object_content('aiida.inp')
    return settings
