"""The ``aiida-les`` click group with every sub-command registered (importing this module imports AiiDA)."""

from aiida_les.cli import campaign, data, setup  # noqa: F401  (registers the sub-commands)
from aiida_les.cli.root import cmd_root

__all__ = ('cmd_root',)
