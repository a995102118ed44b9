"""Which labels a training file holds, checked against the configured key names and the loss weights.

Rules (run before any model is built):

- a label the loss uses (weight > 0) that no frame has is an error, and so is a key the user renamed in ``keys``
  that no frame has; the message lists the keys the file does have (``atoms.info``, ``atoms.arrays``, calculator
  results) so that, e.g., SPICE's ``force`` is found at once;
- a label whose key is ``null`` is not read; one with weight 0 is read for the reported errors only, and dropped
  where its shape is wrong;
- frames that lack a label the loss uses are counted and reported: they train on their other labels only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ase

from les_model import _keys as K
from les_model.config import DataKeysConfig

__all__ = ['LabelError', 'check_label_keys', 'describe_labels', 'keys_in_frames', 'label_counts', 'weights_of']

#: Label key -> name of its TrainConfig loss weight.
WEIGHT_NAMES = {
    K.ENERGY: 'energy_weight',
    K.FORCES: 'forces_weight',
    K.STRESS: 'stress_weight',
    K.DIPOLE: 'dipole_weight',
    K.BEC: 'bec_weight',
}


class LabelError(ValueError):
    """The training data does not hold a label the configuration asks for."""


def keys_in_frames(frames: Sequence[ase.Atoms]) -> dict[str, list[str]]:
    """Keys found in any frame: ``{'info': [...], 'arrays': [...], 'calculator': [...]}`` (positions etc. left out)."""
    info, arrays, calc = set(), set(), set()
    for atoms in frames:
        info.update(atoms.info)
        arrays.update(k for k in atoms.arrays if k not in ('numbers', 'positions'))
        if atoms.calc is not None:
            calc.update(k for k, v in getattr(atoms.calc, 'results', {}).items() if v is not None)
    return {'info': sorted(info), 'arrays': sorted(arrays), 'calculator': sorted(calc)}


def _present(frames: Sequence[ase.Atoms], name: str, per_atom: bool) -> bool:
    for atoms in frames:
        store = atoms.arrays if per_atom else atoms.info
        results = getattr(atoms.calc, 'results', {}) if atoms.calc is not None else {}
        if name in store or results.get(name) is not None:
            return True
    return False


def check_label_keys(
    frames: Sequence[ase.Atoms], keys: DataKeysConfig, weights: Mapping[str, float], source: str
) -> None:
    """Refuse labels the loss needs (or the user named) that are in no frame of ``source``.

    :param frames: the structures read from ``source``.
    :param keys: configured label names.
    :param weights: label key -> loss weight.
    :param source: file name for the message.
    :raises LabelError: naming the label, its configured key, its weight, and the keys the file has.
    """
    defaults = DataKeysConfig()
    problems = []
    for label in WEIGHT_NAMES:
        name = getattr(keys, label)
        if name is None:
            continue
        weight = float(weights.get(label, 0.0))
        renamed = name != getattr(defaults, label)
        if (weight > 0 or renamed) and not _present(frames, name, per_atom=label in (K.FORCES, K.BEC)):
            why = f'{WEIGHT_NAMES[label]} is {weight:g}' if weight > 0 else 'it was set in `keys`'
            problems.append(f'keys.{label} = {name!r} is in no frame ({why})')
    if problems:
        found = keys_in_frames(frames)
        listing = '; '.join(f'{where}: {names}' for where, names in found.items())
        raise LabelError(
            f'{source}: {"; ".join(problems)}. The file has {listing}. Set `keys` to the names the file uses, '
            f'or a weight to 0 / the key to null to train without that label.'
        )


def label_counts(samples: Sequence[Mapping]) -> dict[str, int]:
    """Number of samples holding each label."""
    return {label: sum(label in s for s in samples) for label in K.LABEL_KEYS}


def describe_labels(samples: Sequence[Mapping], weights: Mapping[str, float], what: str) -> list[str]:
    """Lines for the training log: frames per label, and a warning for frames without a label the loss uses.

    :param what: name of the set (``'training set'``).
    :raises LabelError: if the loss uses a label that no sample has.
    """
    counts = label_counts(samples)
    n = len(samples)
    used = [f'{label} {counts[label]}/{n}' for label in K.LABEL_KEYS if weights.get(label, 0.0) > 0]
    monitored = [f'{label} {counts[label]}' for label in K.LABEL_KEYS if weights.get(label, 0.0) <= 0 and counts[label]]
    lines = [f'{what}: {n} frames; labels in the loss: {", ".join(used)}']
    if monitored:
        lines[0] += f'; reported only (weight 0): {", ".join(monitored)}'
    for label in K.LABEL_KEYS:
        if weights.get(label, 0.0) <= 0 or counts[label] == n:
            continue
        if counts[label] == 0:
            raise LabelError(f'{what}: no frame has a {label} label, but {WEIGHT_NAMES[label]} is {weights[label]:g}')
        lines.append(
            f'warning: {n - counts[label]} of {n} frames of the {what} have no {label} label; '
            f'they train on their other labels only'
        )
    return lines


def weights_of(config) -> dict[str, float]:
    """Label key -> loss weight of a :class:`~les_model.config.TrainConfig`."""
    return {label: float(getattr(config, name)) for label, name in WEIGHT_NAMES.items()}
