"""Campaign settings of ``les.active_learning``: defaults, units and validation (before anything runs)."""

from __future__ import annotations

from aiida import orm

DEFAULT_PARAMETERS = {
    'committee_size': 2,  # models trained per generation (seeds seed, seed+1, ...)
    'max_generations': 5,
    'label_budget': 100,  # DFT labels in the whole campaign, initial frames included
    'labels_per_generation': 10,
    'trust_lower': 0.05,  # eV/Å: committee max force std below this = already accurate
    'trust_upper': 0.5,  # eV/Å: above this = likely unphysical, not labelled
    'charge_threshold': None,  # e: latent-charge std that makes a frame a candidate even below trust_lower
    'md_stop_force_std': 1.0,  # eV/Å: an MD trajectory stops once its committee force std passes this
    'temperatures': [300.0],  # K, one MD run per seed and temperature
    # Stages [{temperatures: [K], pressure: bar or null}, ...] (or seed label -> stages), advanced when a generation's
    # accurate fraction reaches schedule_advance_fraction; [] = one NVT stage of `temperatures` (schedule.py).
    'exploration_schedule': [],
    'schedule_advance_fraction': 0.9,
    'accurate_threshold': 0.95,  # stopping rule: fraction of explored frames below trust_lower ...
    'patience': 2,  # ... for this many generations ...
    'force_error_target': 0.1,  # ... and held-out force RMSE (eV/Å) at most this
    'warm_start': True,  # fine-tune from the previous generation's members
    'n_initial_copies': 4,  # perturbed copies per seed when no dataset is given
    'rattle': 0.05,  # Å
    'max_strain': 0.03,
    'n_validation': 2,  # held-out frames split from the initial labels
    # Fraction of each generation's new labels moved to the held-out set instead of training (at least one frame
    # when a generation labels two or more), so the held-out error follows the MD distribution the campaign explores.
    'heldout_fraction': 0.2,
    # Calibrate the committee's force deviation on the held-out set each generation (scale factor, les-eval) and
    # compare the trust levels with the calibrated expected error; False compares them with the raw deviation.
    'calibrate_uncertainty': True,
    'total_charges': {},  # seed label -> total charge (e), default 0
    'multiplicities': {},  # seed label -> spin multiplicity, default 1
    'seed': 0,
    'export_model': True,  # final committee as one metatomic model (`exported_model`; needs the `export` extra)
}


#: Expected type of each parameter: ``int`` (bool refused), ``float`` (int or float), ``bool``, ``'float?'`` (a number
#: or None), ``'floats'`` (a list of numbers), ``'ints_by_seed'`` (a mapping of seed label to integer).
PARAMETER_TYPES = {
    'committee_size': int,
    'max_generations': int,
    'label_budget': int,
    'labels_per_generation': int,
    'trust_lower': float,
    'trust_upper': float,
    'charge_threshold': 'float?',
    'md_stop_force_std': float,
    'temperatures': 'floats',
    'exploration_schedule': 'schedule',
    'schedule_advance_fraction': float,
    'accurate_threshold': float,
    'patience': int,
    'force_error_target': float,
    'warm_start': bool,
    'n_initial_copies': int,
    'rattle': float,
    'max_strain': float,
    'n_validation': int,
    'heldout_fraction': float,
    'calibrate_uncertainty': bool,
    'total_charges': 'ints_by_seed',
    'multiplicities': 'ints_by_seed',
    'seed': int,
    'export_model': bool,
}

_EXPECTED = {
    int: 'an integer',
    float: 'a number',
    bool: 'true or false',
    'float?': 'a number or None',
    'floats': 'a list of numbers',
    'ints_by_seed': 'a mapping of seed label to integer',
    'schedule': 'a list of stages or a mapping of seed label to stages',
}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value, expected) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return _is_number(value)
    if expected is bool:
        return isinstance(value, bool)
    if expected == 'float?':
        return value is None or _is_number(value)
    if expected == 'floats':
        return isinstance(value, list | tuple) and all(_is_number(item) for item in value)
    if expected == 'schedule':
        return isinstance(value, list | tuple | dict)  # stages are checked against the seeds (schedule.py)
    return isinstance(value, dict) and all(_has_type(item, int) for item in value.values())


def check_types(values: dict) -> str | None:
    """Return a sentence naming the first parameter of the wrong type (key, value and the type expected), or None."""
    for key, value in values.items():
        expected = PARAMETER_TYPES[key]
        if not _has_type(value, expected):
            return f'`parameters.{key}` must be {_EXPECTED[expected]}, got {value!r} ({type(value).__name__}).'
    return None


def validate_parameters(parameters: orm.Dict | None, _ctx) -> str | None:
    """Refuse unknown keys, values of the wrong type and inconsistent values with one clear sentence."""
    if parameters is None:
        return None
    values = parameters.get_dict()
    unknown = sorted(set(values) - set(DEFAULT_PARAMETERS))
    if unknown:
        return f'Unknown campaign parameters {unknown}; allowed are {sorted(DEFAULT_PARAMETERS)}.'
    wrong_type = check_types(values)
    if wrong_type:
        return wrong_type
    p = {**DEFAULT_PARAMETERS, **values}
    checks = [
        (p['committee_size'] >= 2, f'committee_size must be >= 2 for an uncertainty, got {p["committee_size"]}'),
        (p['max_generations'] >= 1, f'max_generations must be >= 1, got {p["max_generations"]}'),
        (p['label_budget'] >= 1, f'label_budget must be >= 1, got {p["label_budget"]}'),
        (p['labels_per_generation'] >= 1, f'labels_per_generation must be >= 1, got {p["labels_per_generation"]}'),
        (
            0 <= p['trust_lower'] < p['trust_upper'],
            f'need 0 <= trust_lower < trust_upper, got {p["trust_lower"]}, {p["trust_upper"]}',
        ),
        (p['md_stop_force_std'] > 0, f'md_stop_force_std must be > 0, got {p["md_stop_force_std"]}'),
        (
            len(p['temperatures']) >= 1 and all(t > 0 for t in p['temperatures']),
            f'temperatures must be a non-empty list of positive kelvin, got {p["temperatures"]}',
        ),
        (0 < p['accurate_threshold'] <= 1, f'accurate_threshold must be in (0, 1], got {p["accurate_threshold"]}'),
        (p['patience'] >= 1, f'patience must be >= 1, got {p["patience"]}'),
        (p['n_initial_copies'] >= 1, f'n_initial_copies must be >= 1, got {p["n_initial_copies"]}'),
        (p['n_validation'] >= 1, f'n_validation must be >= 1, got {p["n_validation"]}'),
        (
            0 < p['schedule_advance_fraction'] <= 1,
            f'schedule_advance_fraction must be in (0, 1], got {p["schedule_advance_fraction"]}',
        ),
        (0 <= p['heldout_fraction'] < 1, f'heldout_fraction must be in [0, 1), got {p["heldout_fraction"]}'),
    ]
    for ok, message in checks:
        if not ok:
            return message + '.'
    return None
