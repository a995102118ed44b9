"""Continue a killed campaign or extend a finished one: ``get_builder_restart`` and the checks of ``restart`` inputs.

A continuation is a new ``les.active_learning`` run that starts from what the previous campaign left (see
:mod:`workchains.active_learning.state`): its dataset, held-out set and committee become the new run's ``dataset``,
``validation_dataset`` and ``restart.models``; its generation counter, labels used and per-generation statistics go
into ``restart.state``, so numbering, the stopping rule and the summary continue where it stopped. No seed or earlier
structure is labelled again. The labelling inputs must give the level of theory the dataset was labelled at.
"""

from __future__ import annotations

import math

from aiida import orm

from workchains.active_learning.parameters import DEFAULT_PARAMETERS
from workchains.active_learning.state import campaign_state

__all__ = (
    'check_level_of_theory',
    'check_restart',
    'get_builder_restart',
    'label_level_of_theory',
    'validate_continuation',
)

RESTART_STATE_KEYS = ('previous_campaign', 'generation', 'labels_used', 'statistics')


def get_builder_restart(
    cls,
    previous: orm.WorkChainNode,
    extra_label_budget: int | None = None,
    extra_generations: int | None = None,
    builder=None,
):
    """Return a builder that continues (or extends) campaign ``previous`` from its last complete generation.

    :param previous: a ``les.active_learning`` node in any state: finished (extend it), or killed, excepted, failed or
        with a dead process (continue it from its finished child processes).
    :param extra_label_budget: DFT labels the new run may add on top of those used so far; None keeps the previous
        total budget.
    :param extra_generations: generations the new run may add; None keeps the previous limit for an unfinished
        campaign, and for a finished one allows as many as the extra budget fills (``labels_per_generation`` each).
    :param builder: inputs for the new run (for instance other codes or resources); default: the previous
        campaign's own inputs. Its labelling must give the previous dataset's level of theory.
    :raises ValueError: if ``previous`` is not a campaign, a finished campaign gets no extra budget or generations,
        nothing would be left to run, or the labelling inputs give another level of theory.
    """
    state = campaign_state(previous)
    for name, value in (('extra_label_budget', extra_label_budget), ('extra_generations', extra_generations)):
        if value is not None and value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}.')
    finished = previous.is_finished_ok
    if finished and extra_label_budget is None and extra_generations is None:
        reason = previous.outputs.summary['stop_reason'] if 'summary' in previous.outputs else 'finished'
        raise ValueError(
            f'Campaign {previous.pk} finished ({reason}); give extra_label_budget and/or extra_generations '
            'to extend it.'
        )
    if builder is None:
        builder = previous.get_builder_restart()
        for key in ('dataset', 'validation_dataset'):
            builder.pop(key, None)
        for key in list(builder.restart):  # what the previous campaign itself continued from
            del builder.restart[key]

    parameters = {**DEFAULT_PARAMETERS, **_as_dict(builder.parameters)}
    if extra_label_budget is not None:
        parameters['label_budget'] = state.labels_used + extra_label_budget
    if extra_generations is not None:
        parameters['max_generations'] = state.generation + extra_generations
    elif finished:
        remaining = max(parameters['label_budget'] - state.labels_used, 0)
        parameters['max_generations'] = state.generation + max(
            1, math.ceil(remaining / parameters['labels_per_generation'])
        )
    builder.parameters = orm.Dict(parameters)
    if state.dataset is None:
        # Killed before the initial labels were split: nothing to reuse, the campaign starts again.
        builder.metadata.description = f'Restarts campaign {previous.pk} from the beginning ({state.describe()}).'
        return builder

    error = check_level_of_theory(state.dataset, builder.label) or check_restart(
        parameters, state.as_restart_state(), len(state.models)
    )
    if error:
        raise ValueError(f'Cannot continue campaign {previous.pk}: {error}')
    builder.dataset = state.dataset
    if state.validation_dataset is not None:
        builder.validation_dataset = state.validation_dataset
    builder.restart.state = orm.Dict(state.as_restart_state())
    if state.models:
        builder.restart.models = state.models
    builder.metadata.description = f'Continues campaign {previous.pk} at generation {state.generation}.'
    return builder


def validate_continuation(inputs: dict) -> str | None:
    """Campaign-level check: new labels match the dataset's level of theory; ``restart`` inputs can continue."""
    if 'dataset' in inputs and 'label' in inputs:
        error = check_level_of_theory(inputs['dataset'], inputs['label'])
        if error:
            return f'Cannot label for this dataset: {error}'
    restart = inputs.get('restart') or {}
    if not restart:
        return None
    if 'state' not in restart or 'dataset' not in inputs:
        return '`restart` needs `restart.state` and the `dataset` to continue from; use get_builder_restart.'
    parameters = {**DEFAULT_PARAMETERS, **inputs['parameters'].get_dict()}
    return check_restart(parameters, restart['state'].get_dict(), len(restart.get('models', {})))


def label_level_of_theory(label) -> str | None:
    """Return the level of theory the ``label`` namespace (builder or validated inputs) labels at, None if unknown.

    The same strings the labelling parsers put on every labelled frame (``cp2k/<protocol>/<method>#<hash>``,
    ``ase/<calculator>#<hash>``).
    """
    from aiida_les.labelling.ase_runner import ase_level_of_theory
    from aiida_les.labelling.cp2k_input import level_of_theory

    labeller = getattr(label.get('labeller'), 'value', label.get('labeller')) or 'cp2k'
    if labeller == 'cp2k':
        parameters = (label.get('cp2k') or {}).get('cp2k', {}).get('parameters')
        return None if parameters is None else level_of_theory(_as_dict(parameters))
    calculator = (label.get('ase') or {}).get('calculator')
    return None if calculator is None else ase_level_of_theory(_as_dict(calculator))


def check_level_of_theory(dataset, label) -> str | None:
    """Return why labels from ``label`` cannot join ``dataset`` (another level of theory), or None."""
    existing = getattr(dataset, 'level_of_theory', None)
    new = label_level_of_theory(label)
    if existing is None or new is None or existing == new:
        return None
    return (
        f'the dataset was labelled at `{existing}` but the `label` inputs label at `{new}` (another protocol or '
        'method); a campaign never mixes levels of theory: use the same labelling protocol, or start a new campaign.'
    )


def check_restart(parameters: dict, state: dict, n_models: int) -> str | None:
    """Return why ``restart`` inputs cannot continue a campaign under ``parameters``, or None.

    :param parameters: the campaign settings (defaults filled in).
    :param state: the ``restart.state`` dictionary.
    :param n_models: number of committee models in ``restart.models`` (0: train from scratch).
    """
    missing = [key for key in RESTART_STATE_KEYS if key not in state]
    if missing:
        return f'`restart.state` lacks {missing}; build it with get_builder_restart.'
    generation, labels_used = int(state['generation']), int(state['labels_used'])
    if parameters['max_generations'] <= generation:
        return (
            f'max_generations ({parameters["max_generations"]}) must exceed the {generation} generation(s) already '
            'run: give more generations.'
        )
    if parameters['label_budget'] <= labels_used:
        return f'label_budget ({parameters["label_budget"]}) must exceed the {labels_used} labels already used.'
    if n_models and parameters['warm_start'] and n_models != parameters['committee_size']:
        return (
            f'`restart.models` holds {n_models} models but committee_size is {parameters["committee_size"]}; '
            'warm starts need one previous model per member.'
        )
    return None


def _as_dict(value) -> dict:
    return value.get_dict() if isinstance(value, orm.Dict) else dict(value or {})
