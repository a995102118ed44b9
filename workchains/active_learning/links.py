"""The names a campaign leaves in the provenance graph: its process types and the call-link labels of its steps.

Everything that reads a campaign back (history, restart, export, benchmarks) finds its steps by these labels, so the
workchain writes them only through :func:`generation_link` and the constants here: a change of the outline that
renames a step changes its reader with it.
"""

from __future__ import annotations

import re

__all__ = (
    'EXTRACT',
    'GENERATION_LINK',
    'INITIAL_FRAMES',
    'INITIAL_LABELS',
    'KINDS',
    'PROCESS_TYPES',
    'RESTART_STATE_LINK',
    'SPLIT_INITIAL',
    'SUMMARY',
    'generation_link',
    'generation_link_like',
    'parse_generation_link',
)

#: Process types a campaign node may carry: the entry point (what the registered entry point records) and the class
#: path (what nodes recorded while the entry point named the package instead of the defining module).
PROCESS_TYPES = (
    'aiida.workflows:les.active_learning',
    'workchains.active_learning.workchain.LesActiveLearningWorkChain',
)

#: Steps of the first, optional part: the seeds and their perturbed copies, their labels, the train/held-out split.
INITIAL_FRAMES = 'initial_frames'
INITIAL_LABELS = 'initial_labels'
SPLIT_INITIAL = 'split_initial'
#: The calcfunction that collects the per-generation records into the ``summary`` output.
SUMMARY = 'summary'
#: The incoming link of a continued campaign's ``restart.state`` input (a UUID under ``previous_campaign``).
RESTART_STATE_LINK = 'restart__state'

#: Kinds of a generation's steps that are read back, in outline order: ``generation_NN_<kind>[_<suffix>]``.
#: ``split`` moves part of a generation's labels to the held-out set, ``heldout`` merges them into it.
KINDS = ('train', 'md', 'evaluate', 'select', 'label', 'split', 'merge', 'heldout')
#: Kind of the per-trajectory frame extraction of a generation; not read back (its frames reach the label step).
EXTRACT = 'extract'

GENERATION_LINK = re.compile(rf'generation_(\d+)_({"|".join(KINDS)})(?:_|$)')


def generation_link(generation: int, kind: str, suffix: str | int | None = None) -> str:
    """Return the call-link label of a step of generation ``generation`` (0-based), e.g. ``generation_01_train_0``.

    :param kind: one of :data:`KINDS` or :data:`EXTRACT`.
    :param suffix: what tells the steps of one kind apart (committee member, MD seed and temperature, trajectory).
    """
    if kind not in (*KINDS, EXTRACT):
        raise ValueError(f'Unknown step kind `{kind}`; expected one of {(*KINDS, EXTRACT)}.')
    label = f'generation_{generation:02d}_{kind}'
    return label if suffix is None else f'{label}_{suffix}'


def generation_link_like(kind: str, suffix: str | int | None = None) -> str:
    """Return the QueryBuilder ``like`` pattern of one step in every generation, e.g. ``generation_%_train_0``."""
    return generation_link(0, kind, suffix).replace('generation_00_', 'generation_%_', 1)


def parse_generation_link(label: str) -> tuple[int, str] | None:
    """Return ``(generation, kind)`` of a label written by :func:`generation_link` for a read-back kind, else None."""
    match = GENERATION_LINK.match(label)
    return None if match is None else (int(match.group(1)), match.group(2))
