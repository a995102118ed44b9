"""The base of the configuration sections: a frozen pydantic model with one-line error messages and YAML in/out.

A section (:class:`Section`) declares each key once, as a pydantic field: type, default, bounds and, in its
``description``, the unit in brackets then the meaning (``'[Å] short-range cutoff'``; numbers without a physical unit
name what they count, ``'[epochs] ...'``). ``--help`` and the AiiDA port help read these descriptions
(:meth:`Section.describe`).

pydantic's errors are turned into the project's messages: the dotted key, the value and what was expected
(``TrainConfig.lr: expected a number, got 'fast'``). pydantic skips the checks of a section across its keys when a key
is already wrong; :func:`section_errors` drops the wrong keys and validates again, so every problem is reported at once.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Strict, ValidationError

__all__ = ['Bool', 'ConfigError', 'Float', 'Int', 'Section', 'Str', 'raise_errors', 'section_errors', 'type_name']

#: Field types that refuse conversions (a bool for a number, '3' for an integer); a float key accepts an integer.
Float = Annotated[float, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


class ConfigError(ValueError):
    """An invalid configuration; ``errors`` lists one message per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__('; '.join(self.errors))


def raise_errors(errors: list[str]) -> None:
    """Raise the messages of a section's own checks as one pydantic error (split again in :func:`section_errors`)."""
    if errors:
        raise ValueError('\n'.join(errors))


class Section(BaseModel):
    """A configuration section: frozen, unknown keys refused, built from mappings, written to YAML.

    Build it with :meth:`from_dict` (or :func:`~les_model.config.load_config`) to get :class:`ConfigError`; the
    keyword constructor raises pydantic's ``ValidationError`` (a ``ValueError`` too).
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None):
        """Build the section from a plain mapping (as read from YAML).

        :param mapping: keys are field names; nested sections are mappings too.
        :raises ConfigError: on unknown keys, wrong types or invalid values (all problems listed at once).
        """
        if isinstance(mapping, Mapping | None):
            try:
                return cls.model_validate(dict(mapping or {}))
            except ValidationError:
                pass
        raise ConfigError(section_errors(cls, mapping))

    def to_dict(self) -> dict[str, Any]:
        """Return a plain mapping (lists instead of tuples) that :meth:`from_dict` accepts."""
        return _plain(self.model_dump())

    @classmethod
    def from_yaml(cls, path: str | Path):
        """Read a YAML file; see :meth:`from_dict`."""
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError([f'{path}: expected a YAML mapping at top level, got {type(data).__name__}'])
        return cls.from_dict(data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Write the section as YAML to ``path`` (if given) and return the text."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding='utf-8')
        return text

    @classmethod
    def default(cls, name: str) -> Any:
        """Return the default value of key ``name``."""
        return cls.model_fields[name].get_default(call_default_factory=True)

    @classmethod
    def describe(cls, prefix: str = '', skip: typing.Collection[str] = ()) -> list[str]:
        """One line per key (nested sections flattened to dotted keys): ``'  key: type, default  [unit] meaning'``.

        :param skip: keys left out (the file paths an AiiDA CalcJob sets itself).
        """
        lines = []
        for name, field in cls.model_fields.items():
            if name in skip:
                continue
            section = _section_type(field.annotation)
            if section is not None:
                lines.extend(section.describe(f'{prefix}{name}.'))
                continue
            value = cls.default(name)
            default = 'required' if value in ('', ()) else f'default {value!r}'
            lines.append(f'  {prefix}{name}: {type_name(field.annotation)}, {default}  {field.description}')
        return lines


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _section_type(hint) -> type[Section] | None:
    return hint if isinstance(hint, type) and issubclass(hint, Section) else None


def type_name(hint) -> str:
    """The type of a key in words: ``float``, ``str or null``, ``list of str``, ``cpu | cuda``, ``mapping``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return ' or '.join('null' if a is type(None) else type_name(a) for a in args)
    if origin is Literal:
        return ' | '.join(str(a) for a in args)
    if origin is tuple:
        return f'list of {type_name(args[0])}'
    if origin is dict:
        return 'mapping'
    return getattr(hint, '__name__', str(hint))


def _literal_values(hint) -> list | None:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return list(args)
    if origin in (typing.Union, types.UnionType, Annotated):
        for arg in args:
            values = _literal_values(arg)
            if values is not None:
                return values
    return None


_EXPECTED = {
    'float_type': 'a number',
    'int_type': 'an integer',
    'int_from_float': 'an integer',
    'bool_type': 'true or false',
    'string_type': 'a string',
}
_CONTAINER = {'tuple_type': 'a list', 'list_type': 'a list', 'dict_type': 'a mapping', 'model_type': 'a mapping'}
_BOUNDS = {'greater_than': ('>', 'gt'), 'greater_than_equal': ('>=', 'ge'), 'less_than': ('<', 'lt')}


def _split_loc(cls: type[Section], loc: tuple) -> tuple[list[str], type[Section], tuple]:
    """Split an error location into the path of nested sections, the innermost section and the rest (key, index)."""
    path, section = [cls.__name__], cls
    for i, key in enumerate(loc):
        field = section.model_fields.get(key) if isinstance(key, str) else None
        inner = _section_type(field.annotation) if field is not None else None
        if inner is None:
            return path, section, tuple(loc[i:])
        path.append(key)
        section = inner
    return path, section, ()


def _message(cls: type[Section], error: dict) -> list[str]:
    """The messages of one pydantic error (unknown keys are gathered by the caller)."""
    path, section, rest = _split_loc(cls, error['loc'])
    where = '.'.join(path)
    kind, value = error['type'], error['input']
    if not rest:  # the section's own checks, or a section given as something else than a mapping
        if kind == 'value_error':
            return [f'{where}: {line}' for line in str(error['ctx']['error']).splitlines()]
        return [f'{where}: expected a mapping, got {type(value).__name__}']
    name = rest[0]
    key = f'{where}.{name}' + ''.join(f'[{i}]' for i in rest[1:])
    if kind in _EXPECTED:
        return [f'{key}: expected {_EXPECTED[kind]}, got {value!r}']
    if kind in _CONTAINER:
        return [f'{key}: expected {_CONTAINER[kind]}, got {type(value).__name__}']
    if kind == 'literal_error':
        return [f'{key}: expected one of {_literal_values(section.model_fields[name].annotation)}, got {value!r}']
    if kind in _BOUNDS:
        sign, bound = _BOUNDS[kind]
        return [f'{where}: {name} must be {sign} {error["ctx"][bound]:g}, got {value!r}']
    if kind == 'value_error':
        return [f'{where}: {error["ctx"]["error"]}']
    return [f'{key}: {error["msg"]}, got {value!r}']


def _prune(mapping: dict, loc: tuple, cls: type[Section]) -> bool:
    """Drop the key of an error location from ``mapping`` (nested mappings copied); return whether one was dropped."""
    path, _, rest = _split_loc(cls, loc)
    keys = list(loc[: len(path) - 1]) + list(rest[:1])
    if not keys:
        return False
    node = mapping
    for key in keys[:-1]:
        if not isinstance(node.get(key), Mapping):
            return False
        node[key] = dict(node[key])
        node = node[key]
    if keys[-1] not in node:
        return False
    del node[keys[-1]]
    return True


def section_errors(cls: type[Section], mapping: Mapping[str, Any] | None) -> list[str]:
    """Every problem of ``mapping`` as a section ``cls``, one message each; empty when it is valid.

    Wrong keys are dropped (their defaults used) and the rest validated again, until only the section's own checks
    fail or nothing fails, so the checks across keys still run when one key has a wrong type.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        return [f'{cls.__name__}: expected a mapping, got {type(mapping).__name__}']
    data, messages, unknown = dict(mapping), [], {}
    while True:
        try:
            cls.model_validate(data)
            break
        except ValidationError as exc:
            pruned = False
            for error in exc.errors():
                if error['type'] == 'extra_forbidden':
                    path, section, rest = _split_loc(cls, error['loc'])
                    unknown.setdefault(('.'.join(path), section), []).append(rest[0])
                else:
                    messages.extend(m for m in _message(cls, error) if m not in messages)
                pruned = _prune(data, error['loc'], cls) or pruned
            if not pruned:
                break
    # unknown keys first, outer sections before inner ones, as one message per section
    extra = [
        f'{where}: unknown keys {sorted(keys)}; allowed keys are {sorted(section.model_fields)}'
        for (where, section), keys in sorted(unknown.items(), key=lambda item: item[0][0].count('.'))
    ]
    return extra + messages
