"""``get_builder_from_protocol`` of ``les.active_learning``: one protocol name sets every sub-process."""

from __future__ import annotations

from aiida import orm
from aiida.plugins import WorkflowFactory

from aiida_les.utils.dicts import recursive_merge


def get_builder_from_protocol(
    cls,
    codes: dict[str, orm.AbstractCode],
    structures: dict[str, orm.StructureData],
    protocol: str | None = None,
    overrides: dict | None = None,
    labeller: str = 'cp2k',
    calculator: dict | None = None,
    dataset=None,
    validation_dataset=None,
    backbone: str | None = None,
):
    """Return a builder for a campaign on ``structures`` at ``protocol`` (``fast``, ``balanced``, ``stringent``).

    :param codes: ``train`` (les-train), ``md`` (les-md), ``evaluate`` (les-eval) and ``label`` (les-cp2k, or
        les-ase-label with ``labeller='ase'``) codes.
    :param structures: seed structures, label -> StructureData.
    :param overrides: ``parameters`` (campaign settings) and per-namespace overrides ``train``, ``md``, ``label``,
        ``evaluate``, merged over the protocol; unknown keys raise ``ValueError``.
    :param calculator: the ASE calculator description for ``labeller='ase'``.
    :param backbone: short-range host of the committee: ``mpnn`` (this project's; the default) or ``mace`` (needs
        mace-torch). The training protocol's model settings for that host are used, sized by the campaign's train
        protocol; ``overrides['train']['train']['config']['model']['backbone']`` selects it too.
    """
    missing = sorted({'train', 'md', 'evaluate', 'label'} - set(codes))
    if missing:
        raise ValueError(f'codes is missing {missing}; give les-train, les-md, les-eval and labelling codes.')
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {'parameters', 'train', 'md', 'label', 'evaluate'})
    if unknown:
        raise ValueError(f'Unknown override namespaces {unknown}; allowed: parameters, train, md, label, evaluate.')
    inputs = cls.get_protocol_inputs(protocol, {'parameters': overrides.get('parameters', {})})
    sub = inputs['protocols']
    first = next(iter(structures.values()))

    builder = cls.get_builder()
    builder.structures = structures
    builder.parameters = orm.Dict(inputs['parameters'])
    if dataset is not None:
        builder.dataset = dataset
    if validation_dataset is not None:
        builder.validation_dataset = validation_dataset

    train = WorkflowFactory('les.train.base').get_builder_from_protocol(
        codes['train'], dataset=None, protocol=sub['train'], overrides=overrides.get('train'), backbone=backbone
    )
    builder.train = _as_inputs(train, exclude=('dataset',))
    md = WorkflowFactory('les.md.base').get_builder_from_protocol(
        codes['md'], first, protocol=sub['md'], overrides=overrides.get('md')
    )
    builder.md = _as_inputs(md, exclude=('structure',))
    label = WorkflowFactory('les.label').get_builder_from_protocol(
        codes['label'],
        [first],
        protocol=sub['label'],
        overrides=overrides.get('label'),
        labeller=labeller,
        calculator=calculator,
    )
    builder.label = _as_inputs(label, exclude=('dataset', 'structures'))
    evaluate = recursive_merge(inputs['evaluate'], overrides.get('evaluate', {}))
    builder.evaluate.code = codes['evaluate']
    builder.evaluate.config = orm.Dict(evaluate.get('config', {}))
    builder.evaluate.metadata = evaluate.get('metadata', {})
    return builder


def _as_inputs(builder, exclude: tuple[str, ...]) -> dict:
    """Turn a sub-builder into a plain nested dict of its inputs, without ``exclude`` and without per-run bits."""
    inputs = builder._inputs(prune=True)
    for key in exclude:
        inputs.pop(key, None)
    if 'md' in inputs:
        inputs['md'].pop('models', None)
    return inputs
