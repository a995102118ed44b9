"""Conversion of :class:`ase.Atoms` (with labels) into per-structure samples and batched tensor dictionaries.

A *sample* is a dict of numpy arrays for one structure; :func:`collate` concatenates samples into a batch
(keys from :mod:`les_model._keys`). Labels are looked up first in ``atoms.info`` / ``atoms.arrays`` under the
configured names, then in the attached calculator's results (where :func:`ase.io.read` puts ``energy``,
``forces``, ``stress`` of extxyz files). Missing labels are zero-filled and flagged by a ``*_mask`` entry; a label
whose name in ``keys`` is ``None`` is never read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import ase
import numpy as np
import torch

from les_model import _keys as K
from les_model.config import DataKeysConfig

__all__ = ['atoms_to_batch', 'atoms_to_sample', 'collate', 'to_device']


def _lookup(atoms: ase.Atoms, name: str | None, per_atom: bool):
    if name is None:
        return None
    store = atoms.arrays if per_atom else atoms.info
    if name in store:
        return np.asarray(store[name], dtype=float)
    if atoms.calc is not None:
        results = getattr(atoms.calc, 'results', {})
        if name in results and results[name] is not None:
            return np.asarray(results[name], dtype=float)
    return None


def _stress_3x3(value: np.ndarray, index: int) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if value.shape == (3, 3):
        return value
    if value.shape == (9,):
        return value.reshape(3, 3)
    if value.shape == (6,):
        xx, yy, zz, yz, xz, xy = value
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f'structure {index}: stress must have shape (6,), (9,) or (3, 3), got {value.shape}')


def atoms_to_sample(
    atoms: ase.Atoms, keys: DataKeysConfig | None = None, index: int = 0, lenient: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """Convert one structure and its labels into a dict of numpy arrays.

    :param atoms: the structure; labels in ``info``/``arrays``/calculator results under the names in ``keys``.
    :param keys: label names; defaults to :class:`~les_model.config.DataKeysConfig`.
    :param index: position in the data set, used in error messages only.
    :param lenient: label keys (``'dipole'``, ...) dropped instead of refused when their shape is wrong (labels
        the loss does not use).
    :return: ``positions (n,3)``, ``atomic_numbers (n,)``, ``cell (3,3)``, ``pbc (3,)``, ``total_charge ()``,
        ``spin ()`` and, for each label present, the label plus ``<label>_mask = True``.
    """
    keys = keys or DataKeysConfig()
    n = len(atoms)
    if n == 0:
        raise ValueError(f'structure {index}: has no atoms')
    sample: dict[str, np.ndarray] = {
        K.POSITIONS: np.asarray(atoms.positions, dtype=float),
        K.ATOMIC_NUMBERS: np.asarray(atoms.numbers, dtype=np.int64),
        K.CELL: np.asarray(atoms.cell.array, dtype=float),
        K.PBC: np.asarray(atoms.pbc, dtype=bool),
        K.TOTAL_CHARGE: np.asarray(float(atoms.info.get(keys.total_charge, 0.0))),
        K.SPIN: np.asarray(float(atoms.info.get(keys.spin, 0.0))),
    }
    if np.any(sample[K.PBC]) and abs(np.linalg.det(sample[K.CELL])) < 1e-6:
        raise ValueError(f'structure {index}: periodic but the cell volume is zero')
    parsers = {
        K.ENERGY: (keys.energy, False, lambda v: _energy(v, index)),
        K.FORCES: (keys.forces, True, lambda v: _forces(v, n, index)),
        K.STRESS: (keys.stress, False, lambda v: _stress_3x3(v, index)),
        K.DIPOLE: (keys.dipole, False, lambda v: _dipole(v, index)),
        K.BEC: (keys.bec, True, lambda v: _bec(v, n, index)),
    }
    for key, (name, per_atom, parse) in parsers.items():
        value = _lookup(atoms, name, per_atom)
        if value is None:
            continue
        try:
            sample[key] = parse(value)
        except ValueError:
            if key not in lenient:
                raise
    return sample


def _energy(value: np.ndarray, index: int) -> np.ndarray:
    if value.size != 1:
        raise ValueError(f'structure {index}: energy must be one number, got shape {value.shape}')
    return np.asarray(float(value.reshape(-1)[0]))


def _forces(value: np.ndarray, n: int, index: int) -> np.ndarray:
    if value.shape != (n, 3):
        raise ValueError(f'structure {index}: forces must have shape ({n}, 3), got {value.shape}')
    return value


def _dipole(value: np.ndarray, index: int) -> np.ndarray:
    # (3,) or a 1x3 row (SPICE extxyz files store the per-frame dipole that way)
    if value.size != 3:
        raise ValueError(f'structure {index}: dipole must have shape (3,), got {value.shape} (or a (1, 3) row)')
    return value.reshape(3)


def _bec(value: np.ndarray, n: int, index: int) -> np.ndarray:
    if value.size != n * 9:
        raise ValueError(f'structure {index}: Born charges must have {n}x9 entries, got shape {value.shape}')
    return value.reshape(n, 3, 3)


def collate(
    samples: Sequence[dict[str, np.ndarray]],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = 'cpu',
) -> dict[str, torch.Tensor]:
    """Concatenate samples into one batch dictionary of tensors.

    :param samples: outputs of :func:`atoms_to_sample`.
    :param dtype: floating dtype of the result.
    :param device: device of the result.
    :return: batch with ``positions (N,3)``, ``atomic_numbers (N,)``, ``batch (N,)``, ``cell (B,3,3)``,
        ``pbc (B,3)``, ``n_atoms (B,)``, ``total_charge (B,)``, ``spin (B,)``, and for every label key
        the (zero-filled) label plus its ``(B,)`` bool mask.
    """
    if len(samples) == 0:
        raise ValueError('collate needs at least one sample, got 0')
    n_atoms = np.array([len(s[K.ATOMIC_NUMBERS]) for s in samples], dtype=np.int64)
    out: dict[str, np.ndarray] = {
        K.POSITIONS: np.concatenate([s[K.POSITIONS] for s in samples]),
        K.ATOMIC_NUMBERS: np.concatenate([s[K.ATOMIC_NUMBERS] for s in samples]),
        K.BATCH: np.repeat(np.arange(len(samples), dtype=np.int64), n_atoms),
        K.CELL: np.stack([s[K.CELL] for s in samples]),
        K.PBC: np.stack([s[K.PBC] for s in samples]),
        K.N_ATOMS: n_atoms,
        K.TOTAL_CHARGE: np.array([s[K.TOTAL_CHARGE] for s in samples], dtype=float),
        K.SPIN: np.array([s[K.SPIN] for s in samples], dtype=float),
    }
    per_structure_shape = {K.ENERGY: (), K.STRESS: (3, 3), K.DIPOLE: (3,)}
    per_atom_shape = {K.FORCES: (3,), K.BEC: (3, 3)}
    for key in K.LABEL_KEYS:
        mask = np.array([key in s for s in samples], dtype=bool)
        if not mask.any():
            continue
        if key in per_structure_shape:
            shape = per_structure_shape[key]
            out[key] = np.stack([s[key] if key in s else np.zeros(shape) for s in samples])
        else:
            shape = per_atom_shape[key]
            out[key] = np.concatenate(
                [s[key] if key in s else np.zeros((n, *shape)) for s, n in zip(samples, n_atoms, strict=True)]
            )
        out[K.MASK_OF[key]] = mask
    batch: dict[str, torch.Tensor] = {}
    for key, value in out.items():
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        batch[key] = tensor.to(device)
    return batch


def atoms_to_batch(
    atoms_list: ase.Atoms | Sequence[ase.Atoms],
    keys: DataKeysConfig | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = 'cpu',
) -> dict[str, torch.Tensor]:
    """Convert one or several structures directly into a batch (see :func:`collate`)."""
    if isinstance(atoms_list, ase.Atoms):
        atoms_list = [atoms_list]
    return collate([atoms_to_sample(a, keys, i) for i, a in enumerate(atoms_list)], dtype=dtype, device=device)


def to_device(
    batch: dict[str, torch.Tensor], device: torch.device | str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Move a batch to ``device``, casting floating tensors to ``dtype``."""
    return {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in batch.items()}
