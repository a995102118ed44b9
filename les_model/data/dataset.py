"""Labelled structure data sets: extxyz reading, reference energies, deterministic splits, bootstrap, batching."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch

from les_model import _keys as K
from les_model.config import DataKeysConfig
from les_model.data.atoms import atoms_to_sample, collate
from les_model.data.reference import fit_reference_energies  # noqa: F401  (re-exported)

__all__ = ['StructureDataset', 'fit_reference_energies', 'read_frames']


def read_frames(path: str | Path) -> list[ase.Atoms]:
    """Every frame of an extxyz (or any ase-readable) file; a file without frames is an error."""
    frames = ase.io.read(str(path), index=':')
    if not frames:
        raise ValueError(f'{path}: contains no structures')
    return frames


class StructureDataset:
    """An in-memory list of samples (see :func:`les_model.data.atoms.atoms_to_sample`).

    :param samples: per-structure dicts of numpy arrays.
    """

    def __init__(self, samples: Sequence[dict[str, np.ndarray]]):
        self.samples = list(samples)

    @classmethod
    def from_atoms(
        cls, atoms_list: Sequence[ase.Atoms], keys: DataKeysConfig | None = None, lenient: Collection[str] = ()
    ) -> StructureDataset:
        """Build from ase structures, reading labels under the names in ``keys``.

        :param lenient: labels dropped (not refused) where their shape is wrong; see :func:`atoms_to_sample`.
        """
        return cls([atoms_to_sample(a, keys, i, lenient) for i, a in enumerate(atoms_list)])

    @classmethod
    def from_file(
        cls, path: str | Path, keys: DataKeysConfig | None = None, lenient: Collection[str] = ()
    ) -> StructureDataset:
        """Read every frame of an extxyz (or any ase-readable) file."""
        return cls.from_atoms(read_frames(path), keys, lenient)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.samples[index]

    @property
    def species(self) -> tuple[int, ...]:
        """Sorted atomic numbers present in the data set."""
        return tuple(sorted({int(z) for s in self.samples for z in s[K.ATOMIC_NUMBERS]}))

    @property
    def n_atoms_total(self) -> int:
        """Number of atoms over all structures."""
        return int(sum(len(s[K.ATOMIC_NUMBERS]) for s in self.samples))

    def subset(self, indices: Sequence[int]) -> StructureDataset:
        """Return the structures at ``indices`` (repeats allowed)."""
        return StructureDataset([self.samples[int(i)] for i in indices])

    def split(self, valid_fraction: float, seed: int) -> tuple[StructureDataset, StructureDataset]:
        """Deterministic random split into (train, validation).

        :param valid_fraction: fraction in [0, 1) of structures for validation; at least one structure goes to
            validation when the fraction is > 0 and the data set has two or more structures.
        :param seed: permutation seed; the same seed always gives the same split.
        """
        if not 0.0 <= valid_fraction < 1.0:
            raise ValueError(f'valid_fraction must be in [0, 1), got {valid_fraction}')
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        n_valid = int(round(valid_fraction * n))
        if valid_fraction > 0 and n >= 2:
            n_valid = min(max(n_valid, 1), n - 1)
        return self.subset(sorted(perm[n_valid:])), self.subset(sorted(perm[:n_valid]))

    def bootstrap(self, seed: int) -> StructureDataset:
        """Resample with replacement (same size), as used to diversify committee members."""
        rng = np.random.default_rng(seed)
        return self.subset(rng.integers(0, len(self), size=len(self)))

    def batches(
        self,
        batch_size: int,
        shuffle_seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = 'cpu',
        skip: int = 0,
        shard: tuple[int, int] | None = None,
        every: tuple[int, int] | None = None,
    ) -> Iterator[dict[str, torch.Tensor] | None]:
        """Yield collated batches.

        :param batch_size: structures per batch (the last batch may be smaller).
        :param shuffle_seed: if given, the order is a permutation drawn from this seed (deterministic).
        :param skip: number of leading batches to skip (used when resuming mid-epoch).
        :param shard: ``(rank, world_size)``: yield only this rank's contiguous part of every batch (data-parallel
            training), or None where that part is empty (a short last batch), so that all ranks step together.
        :param every: ``(rank, world_size)``: yield only the batches whose index is ``rank`` modulo ``world_size``
            (data-parallel evaluation; whole batches).
        """
        if batch_size <= 0:
            raise ValueError(f'batch_size must be > 0, got {batch_size}')
        order = np.arange(len(self))
        if shuffle_seed is not None:
            order = np.random.default_rng(shuffle_seed).permutation(len(self))
        for b, start in enumerate(range(0, len(self), batch_size)):
            if b < skip or (every is not None and b % every[1] != every[0]):
                continue
            indices = order[start : start + batch_size]
            if shard is not None:
                rank, world = shard
                indices = indices[rank * len(indices) // world : (rank + 1) * len(indices) // world]
                if len(indices) == 0:
                    yield None
                    continue
            yield collate([self.samples[i] for i in indices], dtype=dtype, device=device)

    def n_batches(self, batch_size: int) -> int:
        """Number of batches per epoch."""
        return (len(self) + batch_size - 1) // batch_size
