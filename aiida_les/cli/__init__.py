"""Command line interface ``aiida-les``: set-up of profile, computer and codes; list/show/export models and datasets.

The ``model`` and ``dataset`` groups are also reachable as ``verdi data les model ...`` (entry point
``aiida.cmdline.data:les``).
"""

from aiida_les.cli import campaign, data, setup  # noqa: F401, E402  (registers sub-commands)
from aiida_les.cli.root import cmd_root

__all__ = ('cmd_root',)
