"""Checks of a campaign's seeds and datasets before it is launched: what would otherwise fail mid-campaign.

A seed that the labeller refuses (overlapping or NaN atoms, a zero-volume cell, an element the protocol has no basis
set for, a charge/multiplicity that does not fit its electrons) would be excluded from the initial labels and still
be explored by MD in every generation; a held-out set of another level of theory would make every held-out error
meaningless. A label budget that the initial frames alone exceed, a held-out set that would leave no training frame,
and a dataset that lacks an element of the held-out set or of a seed (its models could not predict those atoms) would
each surface only mid-campaign, or not at all. All are refused by the campaign's input validator, so nothing is
launched.
"""

from __future__ import annotations

from workchains.active_learning.parameters import DEFAULT_PARAMETERS
from workchains.active_learning.schedule import check_schedule, md_run_config, md_runs, n_stages
from workchains.label.label import precheck_structure

__all__ = (
    'check_dataset_levels',
    'check_dataset_species',
    'check_initial_frames',
    'check_program_configs',
    'check_seeds',
)


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
    periodic = {name: bool(all(structure.pbc)) for name, structure in structures.items()}
    schedule_error = check_schedule(parameters['exploration_schedule'], periodic)
    if schedule_error:
        return f'parameters.{schedule_error}'
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


def check_initial_frames(inputs: dict) -> str | None:
    """Return why the initial frames do not fit ``label_budget`` and ``n_validation``, or None.

    Without a ``dataset`` the campaign first labels every seed and ``n_initial_copies`` perturbed copies of it, all
    counted against ``label_budget``, and holds ``n_validation`` of them out; at least one must stay for training.
    """
    if 'dataset' in inputs or not inputs.get('structures'):
        return None
    parameters = {**DEFAULT_PARAMETERS, **(inputs['parameters'].get_dict() if 'parameters' in inputs else {})}
    n_seeds = len(inputs['structures'])
    n_initial = n_seeds * (1 + parameters['n_initial_copies'])
    counted = (
        f'{n_initial} initial frames ({n_seeds} seed(s) x (1 + n_initial_copies {parameters["n_initial_copies"]}))'
    )
    if parameters['label_budget'] < n_initial:
        return (
            f'`parameters.label_budget` {parameters["label_budget"]} is smaller than the {counted} that the campaign '
            'labels first: raise label_budget or lower n_initial_copies.'
        )
    if parameters['n_validation'] >= n_initial:
        return (
            f'`parameters.n_validation` {parameters["n_validation"]} would hold out all of the {counted}, leaving '
            f'none to train on: use at most {n_initial - 1}, or raise n_initial_copies.'
        )
    return None


def check_dataset_species(inputs: dict) -> str | None:
    """Return which elements of ``validation_dataset`` or of a seed the training ``dataset`` lacks, or None.

    Models know only the elements of the frames they were trained on: a held-out frame with another element fails the
    first training (its validation pass), and a seed with one fails every MD run.
    """
    if 'dataset' not in inputs:
        return None
    known = set(inputs['dataset'].species or [])
    if 'validation_dataset' in inputs:
        missing = sorted(set(inputs['validation_dataset'].species or []) - known)
        if missing:
            return (
                f'`validation_dataset` has elements {missing} that `dataset` lacks (it has {sorted(known)}): models '
                'trained on `dataset` cannot predict them.'
            )
    for name, structure in sorted((inputs.get('structures') or {}).items()):
        missing = sorted(set(structure.get_symbols_set()) - known)
        if missing:
            return (
                f'Seed structure `{name}` has elements {missing} that `dataset` lacks (it has {sorted(known)}): '
                'models trained on `dataset` cannot run MD on it.'
            )
    return None


def check_program_configs(inputs: dict) -> str | None:
    """Return why a ``les-train``, ``les-md`` or ``les-eval`` configuration of the campaign is invalid, or None.

    The campaign's ``train``, ``md`` and ``evaluate`` namespaces leave out what it fills at run time (dataset,
    structure, models), so the CalcJobs' own validators skip the configuration there; without this check a bad MD
    setting (a 50 fs time step, say) would surface only after the initial labels and the first training. The MD
    configuration is checked with what the campaign sets per run: each temperature and ``md_stop_force_std``.
    """
    from aiida import orm
    from aiida.plugins import CalculationFactory

    parameters = {**DEFAULT_PARAMETERS, **(inputs['parameters'].get_dict() if 'parameters' in inputs else {})}
    checks = []
    if 'train' in inputs:
        checks.append(('train', CalculationFactory('les.train'), dict(inputs['train'].get('train', {}))))
    if 'md' in inputs:
        md = dict(inputs['md'].get('md', {}))
        config = md['config'].get_dict() if 'config' in md else {}
        seeds = sorted(inputs.get('structures') or {}) or ['seed']
        schedule, temperatures = parameters['exploration_schedule'], parameters['temperatures']
        runs = {
            (run.temperature, run.pressure)
            for stage in range(n_stages(schedule, seeds, temperatures))
            for run in md_runs(schedule, stage, seeds, temperatures)
        }
        for temperature, pressure in sorted(runs, key=str):
            config = {**config, **md_run_config(temperature, pressure)}
            config['max_force_std'] = float(parameters['md_stop_force_std'])
            checks.append(('md', CalculationFactory('les.md'), {**md, 'config': orm.Dict(config)}))
    if 'evaluate' in inputs:
        checks.append(('evaluate', CalculationFactory('les.evaluate'), dict(inputs['evaluate'])))
    for namespace, calculation, calculation_inputs in checks:
        error = calculation.check_config(calculation_inputs)
        if error:
            return f'`{namespace}` inputs: {error}'
    return None
