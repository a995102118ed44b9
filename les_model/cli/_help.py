"""Help text of the programs: every configuration key with its type, default, unit and meaning, read from the field
descriptions of :mod:`les_model.config` (so a new key shows up in ``--help`` by itself).
"""

from __future__ import annotations

import textwrap

from les_model.config import EvalConfig, MDConfig, TrainConfig

__all__ = ['config_epilog']

_SECTIONS = {'train': TrainConfig, 'md': MDConfig, 'eval': EvalConfig}
_EXAMPLES = {'train': 'train.yaml', 'md': 'md.yaml', 'eval': 'eval.yaml'}


def config_epilog(kind: str) -> str:
    """Return the ``--help`` epilog of the program reading a configuration of ``kind`` (``train``, ``md``, ``eval``).

    One line per key: ``key: type, default  [unit] meaning``. Units everywhere: Å, eV, e, fs, K, bar, s.
    """
    cls = _SECTIONS[kind]
    header = (
        f'configuration keys ({cls.__name__}; units Å, eV, e, fs, K, bar, s; unknown keys are refused). '
        f'Annotated example: examples/configs/{_EXAMPLES[kind]} in the aiida-les repository; file contract and exit '
        'codes: les_model/cli/README.md.'
    )
    return '\n'.join([textwrap.fill(header, width=100), *cls.describe()])
