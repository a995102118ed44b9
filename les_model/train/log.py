"""The training log: one line per epoch (and the run's notices) on stdout and in ``train.log``.

A line reads ``epoch  12/60  lr 4.1e-03  train E 12.3 meV/atom F 145 meV/Å  valid E 10.1 meV/atom F 130 meV/Å
1.2 s *`` (``*`` marks a new best model); committee members are prefixed with ``[member k/K]``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = ['LOG_FILE', 'TrainLog', 'format_epoch_line', 'format_errors']

LOG_FILE = 'train.log'

#: (metric prefix in metrics.json, short name, unit) of the errors shown per epoch.
_SHOWN = (
    ('energy_per_atom', 'E', 'meV/atom'),
    ('forces', 'F', 'meV/Å'),
    ('stress', 'S', 'meV/Å^3'),
    ('dipole', 'D', 'me Å'),
    ('bec', 'Z*', 'me'),
)


def _number(value: float) -> str:
    # three significant digits: what an RMSE between epochs can tell apart
    if value == 0 or 0.1 <= abs(value) < 1e5:
        return f'{value:.3g}' if abs(value) < 1000 else f'{value:.0f}'
    return f'{value:.2e}'


def format_errors(errors: Mapping[str, float], kind: str = 'rmse') -> str:
    """``'E 12.3 meV/atom F 145 meV/Å'`` from a metrics mapping (``<name>_rmse`` entries); ``'-'`` when empty."""
    parts = [
        f'{short} {_number(errors[f"{name}_{kind}"])} {unit}'
        for name, short, unit in _SHOWN
        if f'{name}_{kind}' in errors
    ]
    return ' '.join(parts) if parts else '-'


def format_epoch_line(
    entry: Mapping[str, Any],
    epochs: int,
    seconds: float,
    member: int = 0,
    n_members: int = 1,
    best: bool = False,
) -> str:
    """One line for the history ``entry`` of an epoch (``epoch``, ``lr``, ``train``, ``valid`` errors).

    :param epochs: the epoch budget (shown as ``epoch e/epochs``).
    :param seconds: wall time of the epoch [s], validation included.
    """
    prefix = f'[member {member}/{n_members}] ' if n_members > 1 else ''
    width = len(str(epochs))
    line = (
        f'{prefix}epoch {entry["epoch"]:>{width}}/{epochs}  lr {entry["lr"]:.2e}  '
        f'train {format_errors(entry.get("train", {}))}'
    )
    if entry.get('valid'):
        line += f'  valid {format_errors(entry["valid"])}'
    line += f'  {seconds:.1f} s'
    return line + (' *' if best else '')


class TrainLog:
    """Write lines to ``train.log`` in ``workdir`` and to stdout.

    :param workdir: output directory of the run.
    :param echo: also print every line on stdout (flushed at once, so a job's stdout shows progress).
    :param append: continue an existing ``train.log`` (a resumed run); otherwise it is started afresh.
    """

    def __init__(self, workdir: str | Path, echo: bool = True, stream: TextIO | None = None, append: bool = False):
        self.path = Path(workdir) / LOG_FILE
        self.echo = echo
        self.stream = stream
        if not append:
            self.path.write_text('', encoding='utf-8')

    def __call__(self, line: str) -> None:
        """Write ``line`` (one line; no trailing newline needed)."""
        with open(self.path, 'a', encoding='utf-8') as handle:
            handle.write(line.rstrip('\n') + '\n')
        if self.echo:
            from tqdm import tqdm

            stream = self.stream or sys.stdout
            tqdm.write(line, file=stream)  # clears and redraws a progress bar on the same terminal
            stream.flush()
