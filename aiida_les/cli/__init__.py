"""Command line interface ``aiida-les``: set-up of profile, computer and codes; list/show/export models, datasets and
campaigns.

The ``model`` and ``dataset`` groups are also reachable as ``verdi data les model ...`` (entry point
``aiida.cmdline.data:les``). Importing this package imports no AiiDA module: importing ``aiida`` creates its
configuration directory (``~/.aiida`` without ``AIIDA_PATH``), so :func:`main` first decides where that is
(:mod:`aiida_les.cli.configuration`) and only then loads the commands. ``cmd_root`` (the click group, for tests and
embedding) is loaded on first access.
"""

from __future__ import annotations

import pathlib
import sys

__all__ = ('cmd_root', 'main')


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aiida-les`` program; never creates ``~/.aiida`` (see :mod:`.configuration`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _prepare_or_exit(argv)
    from aiida_les.cli.commands import cmd_root

    return cmd_root.main(args=argv, prog_name='aiida-les')


def _prepare_or_exit(argv: list[str]) -> None:
    from aiida_les.cli.configuration import prepare_configuration_directory

    refusal = prepare_configuration_directory(argv)
    if refusal is not None:
        print(f'Critical: {refusal}', file=sys.stderr)
        sys.exit(1)


def __getattr__(name: str):
    if name == 'cmd_root':
        # A console script generated for the former entry point (`aiida_les.cli:cmd_root`) calls the group itself:
        # it gets the same guard as `main` until the package is reinstalled.
        if pathlib.Path(sys.argv[0]).name == 'aiida-les':
            _prepare_or_exit(sys.argv[1:])
        from aiida_les.cli.commands import cmd_root

        return cmd_root
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
