"""ProtocolMixin: named input presets (``fast``, ``balanced``, ``stringent``) read from one YAML file per workchain.

A protocol file holds ``default_protocol``, ``default_inputs`` (shared by all protocols) and ``protocols``, a mapping
of name -> ``{description, <inputs to merge over default_inputs>}``. A workchain may name further per-protocol keys
that are not inputs (``_protocol_meta_keys``; the training protocol's per-backbone model presets, for instance) and
use them itself. Overrides are merged last; keys that are not ports of the workchain (recursively through port
namespaces) are refused, so a typo never silently does nothing.
"""

from __future__ import annotations

import functools
import pathlib
import typing as t

import yaml
from aiida.engine.processes.ports import PortNamespace

from aiida_les.utils.dicts import recursive_merge

__all__ = ('ProtocolMixin', 'check_override_keys')

PROTOCOL_DIRECTORY = pathlib.Path(__file__).resolve().parent


@functools.lru_cache(maxsize=16)
def _load(filepath: str) -> dict:
    with open(filepath) as handle:
        return yaml.safe_load(handle)


def check_override_keys(overrides: t.Mapping, namespace: PortNamespace, prefix: str = '') -> None:
    """Raise ``ValueError`` for override keys that are not ports of ``namespace`` (recursing into sub-namespaces).

    Values of non-namespace ports (a ``Dict`` of parameters, for instance) are not inspected here: their own port
    validators check them. Exposed namespaces are dynamic in aiida-core, so only namespaces without any port accept
    arbitrary keys.
    """
    for key, value in overrides.items():
        if key not in namespace:
            # A purely dynamic namespace (a set of structures, say) has no fixed keys to check against.
            if namespace.dynamic and len(namespace) == 0:
                continue
            raise ValueError(
                f'Unknown override key `{prefix}{key}`; expected one of {sorted(namespace.keys())} in that namespace.'
            )
        port = namespace[key]
        if isinstance(port, PortNamespace) and isinstance(value, t.Mapping):
            check_override_keys(value, port, prefix=f'{prefix}{key}.')


class ProtocolMixin:
    """Mixin giving a workchain class ``get_protocol_inputs`` from ``workchains/protocols/<_protocol_file>``."""

    _protocol_file: t.ClassVar[str]
    #: Keys of a protocol entry that are not workchain inputs (left out of ``get_protocol_inputs``).
    _protocol_meta_keys: t.ClassVar[tuple[str, ...]] = ('description',)

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """Return the path of this class's protocol YAML file."""
        return PROTOCOL_DIRECTORY / cls._protocol_file

    @classmethod
    def _load_protocol_file(cls) -> dict:
        return _load(str(cls.get_protocol_filepath()))

    @classmethod
    def get_default_protocol(cls) -> str:
        """Return the name of the default protocol."""
        return cls._load_protocol_file()['default_protocol']

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict]:
        """Return ``{name: {'description': ...}}`` for every protocol."""
        return {
            name: {'description': protocol['description']}
            for name, protocol in cls._load_protocol_file()['protocols'].items()
        }

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | pathlib.Path | None = None) -> dict:
        """Return the inputs of ``protocol`` (default inputs, then the protocol, then ``overrides``) as a dict.

        :param protocol: protocol name; None picks the default protocol.
        :param overrides: a dict or a YAML file path merged last; unknown keys raise ``ValueError``.
        :raises ValueError: for an unknown protocol name or unknown override keys.
        """
        data = cls._load_protocol_file()
        protocol = cls._check_protocol_name(protocol)
        chosen = {
            key: value for key, value in data['protocols'][protocol].items() if key not in cls._protocol_meta_keys
        }
        inputs = recursive_merge(data.get('default_inputs') or {}, chosen)
        overrides = cls.read_overrides(overrides)
        return recursive_merge(inputs, overrides) if overrides is not None else inputs

    @classmethod
    def _check_protocol_name(cls, protocol: str | None) -> str:
        """Return ``protocol``, or the default protocol for None; raise ``ValueError`` for an unknown name."""
        data = cls._load_protocol_file()
        protocol = protocol or data['default_protocol']
        if protocol not in data['protocols']:
            raise ValueError(f'Unknown protocol `{protocol}`; available: {sorted(data["protocols"])}.')
        return protocol

    @classmethod
    def read_overrides(cls, overrides: t.Mapping | str | pathlib.Path | None) -> dict | None:
        """Return ``overrides`` as a dict (read from YAML when a path is given), its keys checked against the ports.

        :raises TypeError: when ``overrides`` is neither a mapping nor a path.
        :raises ValueError: for keys that are not ports of this workchain.
        """
        if overrides is None:
            return None
        if isinstance(overrides, str | pathlib.Path):
            overrides = _load(str(overrides))
        if not isinstance(overrides, t.Mapping):
            raise TypeError(f'`overrides` must be a dict or a YAML path, got {type(overrides).__name__}.')
        check_override_keys(overrides, cls.spec().inputs)
        return dict(overrides)
