"""Where ``aiida-les`` finds the AiiDA configuration, decided before any AiiDA module is imported.

Importing ``aiida`` creates its configuration directory: the one ``AIIDA_PATH`` names, or ``~/.aiida``. The rule of
``aiida-les``: it uses the directory ``AIIDA_PATH`` names (created if missing, as AiiDA does); without
``AIIDA_PATH`` it uses an existing ``~/.aiida`` (an AiiDA installation the user already has, as ``verdi`` would) and
never creates one. Help (``-h``/``--help``, or no arguments) works everywhere and writes nothing the user can see: it
runs against a throw-away directory. Everything else without a configuration stops with one line saying what to set.
This module imports nothing from AiiDA.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import warnings

__all__ = ('prepare_configuration_directory',)

#: Held for the life of the process: the throw-away configuration directory of a help request.
_SCRATCH: list[tempfile.TemporaryDirectory] = []


def prepare_configuration_directory(argv: list[str]) -> str | None:
    """Make sure importing AiiDA will not create ``~/.aiida``; return why the command cannot run, or None.

    :param argv: the command-line arguments after the program name.
    """
    if os.environ.get('AIIDA_PATH'):
        return None  # the user said where
    home_config = pathlib.Path('~/.aiida').expanduser()
    if home_config.is_dir():
        return None  # an existing AiiDA installation, used as verdi would
    if not argv or {'-h', '--help'} & set(argv):
        scratch = tempfile.TemporaryDirectory(prefix='aiida-les-help-')
        _SCRATCH.append(scratch)
        os.environ['AIIDA_PATH'] = scratch.name
        warnings.filterwarnings('ignore', message='Creating AiiDA configuration folder')
        return None
    return (
        f'No AiiDA configuration: AIIDA_PATH is not set and {home_config} does not exist, and aiida-les does not '
        'create it. Set AIIDA_PATH to the directory that holds (or should hold) the .aiida folder, e.g. '
        '`export AIIDA_PATH=$PWD/.aiida` (what `make` uses), or `export AIIDA_PATH=$HOME` to use ~/.aiida.'
    )
