"""Campaign parameters are validated before anything runs."""

import pytest
from aiida import orm

from workchains.active_learning.parameters import DEFAULT_PARAMETERS, validate_parameters


def test_defaults_are_valid():
    assert validate_parameters(orm.Dict(DEFAULT_PARAMETERS), None) is None


@pytest.mark.parametrize(
    ('override', 'message'),
    [
        ({'comittee_size': 3}, "Unknown campaign parameters ['comittee_size']"),
        ({'committee_size': 1}, 'committee_size must be >= 2'),
        ({'trust_lower': 0.5, 'trust_upper': 0.1}, 'trust_lower < trust_upper'),
        ({'temperatures': []}, 'temperatures must be a non-empty list'),
        ({'temperatures': [300.0, -5.0]}, 'temperatures must be a non-empty list'),
        ({'label_budget': 0}, 'label_budget must be >= 1'),
        ({'accurate_threshold': 1.5}, 'accurate_threshold must be in (0, 1]'),
    ],
)
def test_bad_parameters_are_refused(override, message):
    error = validate_parameters(orm.Dict(override), None)
    assert error is not None
    assert message in error


def test_every_parameter_has_a_type():
    from workchains.active_learning.parameters import PARAMETER_TYPES, check_types

    assert set(PARAMETER_TYPES) == set(DEFAULT_PARAMETERS)
    assert check_types(DEFAULT_PARAMETERS) is None
    assert check_types({'temperatures': [300, 450.0], 'charge_threshold': 0.1, 'total_charges': {'a': -1}}) is None
    assert 'must be an integer, got True (bool)' in check_types({'committee_size': True})
