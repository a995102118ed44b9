"""recursive_merge: merge nested mappings, the right one winning, without touching either input."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ('recursive_merge',)


def recursive_merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new dictionary with ``right`` merged into ``left``.

    Keys present in both are merged recursively when both values are mappings; otherwise the value of ``right``
    wins. Neither input is modified (values are deep-copied).

    :param left: the base mapping, for example protocol defaults.
    :param right: the overriding mapping, for example user overrides.
    :return: the merged dictionary.
    :raises TypeError: if either argument is not a mapping.
    """
    for name, value in (('left', left), ('right', right)):
        if not isinstance(value, Mapping):
            raise TypeError(f'recursive_merge: `{name}` must be a mapping, got {type(value).__name__}.')
    merged = {key: copy.deepcopy(value) for key, value in left.items()}
    for key, value in right.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
