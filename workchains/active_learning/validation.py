"""Checks of a campaign's seeds and datasets before it is launched: what would otherwise fail mid-campaign.

A seed that the labeller refuses (overlapping or NaN atoms, a zero-volume cell, an element the protocol has no basis
set for, a charge/multiplicity that does not fit its electrons) would be excluded from the initial labels and still
be explored by MD in every generation; a held-out set of another level of theory would make every held-out error
meaningless. Both are refused by the campaign's input validator, so nothing is launched.
"""

from __future__ import annotations

from workchains.active_learning.parameters import DEFAULT_PARAMETERS
from workchains.label.label import precheck_structure

__all__ = ('check_dataset_levels', 'check_seeds')


def check_seeds(inputs: dict) -> str | None:
    """Return why a seed structure cannot be labelled by the campaign's labeller, or None.

    :param inputs: the campaign inputs: ``structures``, ``parameters`` (``total_charges`` and ``multiplicities`` per
        seed label) and the ``label`` namespace.
    """
    structures = inputs.get('structures') or {}
    parameters = {**DEFAULT_PARAMETERS, **(inputs['parameters'].get_dict() if 'parameters' in inputs else {})}
    for key in ('total_charges', 'multiplicities'):
        unknown = sorted(set(parameters[key] or {}) - set(structures))
        if unknown:
            return f'`parameters.{key}` names {unknown}, which are not seed labels; seeds are {sorted(structures)}.'
    label = inputs.get('label')
    if not label:
        return None
    for name in sorted(structures):
        error = precheck_structure(
            structures[name].get_ase(),
            label,
            int((parameters['total_charges'] or {}).get(name, 0)),
            int((parameters['multiplicities'] or {}).get(name, 1)),
        )
        if error:
            return f'Seed structure `{name}` cannot be labelled: {error}'
    return None


def check_dataset_levels(inputs: dict) -> str | None:
    """Return why ``dataset`` and ``validation_dataset`` cannot be used together (other levels of theory), or None."""
    if 'dataset' not in inputs or 'validation_dataset' not in inputs:
        return None
    train, held_out = inputs['dataset'].level_of_theory, inputs['validation_dataset'].level_of_theory
    if train == held_out:
        return None
    return (
        f'`validation_dataset` was labelled at `{held_out}` but `dataset` at `{train}`: held-out errors need the '
        'same level of theory as the training labels.'
    )
