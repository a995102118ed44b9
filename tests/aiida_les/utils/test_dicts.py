"""Tests for :func:`aiida_les.utils.dicts.recursive_merge`."""

import pytest

from aiida_les.utils.dicts import recursive_merge


def test_merge_nested_right_wins_and_inputs_untouched():
    left = {'a': 1, 'nested': {'x': 1, 'y': [1, 2]}, 'keep': {'k': 0}}
    right = {'a': 2, 'nested': {'y': [3], 'z': 4}, 'new': 5}
    merged = recursive_merge(left, right)
    assert merged == {'a': 2, 'nested': {'x': 1, 'y': [3], 'z': 4}, 'keep': {'k': 0}, 'new': 5}
    assert left == {'a': 1, 'nested': {'x': 1, 'y': [1, 2]}, 'keep': {'k': 0}}
    merged['keep']['k'] = 99
    assert left['keep']['k'] == 0  # deep copies


def test_mapping_replaced_by_scalar():
    assert recursive_merge({'a': {'b': 1}}, {'a': None}) == {'a': None}


def test_type_error():
    with pytest.raises(TypeError, match='`right` must be a mapping, got list'):
        recursive_merge({}, [])
