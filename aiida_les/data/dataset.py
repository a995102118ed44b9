"""LesDatasetData: a labelled extxyz dataset stored as one file, with its statistics as attributes."""

from __future__ import annotations

import io
import pathlib
import typing as t

import ase
import ase.io
import numpy as np
from aiida import orm

__all__ = ('LesDatasetData',)

# Per-frame labels we look for, in `atoms.info` (or `atoms.arrays` for per-atom labels).
_FRAME_LABELS = ('energy', 'stress', 'dipole', 'total_charge', 'spin_multiplicity', 'level_of_theory')
_ATOM_LABELS = ('forces', 'bec')


class LesDatasetData(orm.SinglefileData):
    """An extxyz dataset of labelled structures.

    Attributes (queryable): ``n_structures``, ``n_atoms`` (total), ``species`` (sorted element symbols), ``labels``
    (label names present in every frame), ``level_of_theory`` (the single level of theory of all frames, or None when
    the frames carry none). A dataset never mixes levels of theory: construction refuses it.
    """

    DEFAULT_FILENAME = 'dataset.extxyz'

    def __init__(self, file: str | pathlib.Path | t.BinaryIO, filename: str | None = None, **kwargs):
        """Store ``file`` (an extxyz path or binary handle) after reading it once to check it and take statistics.

        :raises ValueError: if the file is not readable extxyz, is empty, or mixes levels of theory.
        """
        if isinstance(file, str | pathlib.Path):
            content = pathlib.Path(file).read_bytes()
            filename = filename or pathlib.Path(file).name
        else:
            content = file.read()
        frames = _read_frames(content)
        super().__init__(io.BytesIO(content), filename=filename or self.DEFAULT_FILENAME, **kwargs)
        self._set_statistics(frames)

    @classmethod
    def from_ase(cls, frames: t.Sequence[ase.Atoms], filename: str | None = None, **kwargs) -> LesDatasetData:
        """Build a dataset node from ase frames; labels travel in ``atoms.info``/``atoms.arrays`` or a calculator."""
        if len(frames) == 0:
            raise ValueError('A dataset needs at least one structure, got an empty list.')
        handle = io.StringIO()
        ase.io.write(handle, list(frames), format='extxyz')
        return cls(io.BytesIO(handle.getvalue().encode()), filename=filename, **kwargs)

    @classmethod
    def from_structures(cls, structures: t.Sequence[orm.StructureData], **kwargs) -> LesDatasetData:
        """Build an unlabelled dataset from StructureData nodes (e.g. seed structures to label)."""
        return cls.from_ase([s.get_ase() for s in structures], **kwargs)

    def get_ase(self) -> list[ase.Atoms]:
        """Return all frames as a list of ase.Atoms (labels in ``info`` and ``arrays``)."""
        return _read_frames(self.get_content(mode='rb'))

    def get_structures(self) -> list[orm.StructureData]:
        """Return unstored StructureData nodes, one per frame (labels are dropped)."""
        return [orm.StructureData(ase=atoms) for atoms in self.get_ase()]

    @property
    def n_structures(self) -> int:
        """Number of frames."""
        return self.base.attributes.get('n_structures')

    @property
    def species(self) -> list[str]:
        """Sorted element symbols present."""
        return self.base.attributes.get('species')

    @property
    def labels(self) -> list[str]:
        """Label names present in every frame."""
        return self.base.attributes.get('labels')

    @property
    def level_of_theory(self) -> str | None:
        """The level of theory shared by all frames, or None."""
        return self.base.attributes.get('level_of_theory')

    def _set_statistics(self, frames: list[ase.Atoms]) -> None:
        levels = {atoms.info.get('level_of_theory') for atoms in frames}
        if len(levels) > 1:
            raise ValueError(f'A dataset must not mix levels of theory; found {sorted(map(str, levels))}.')
        present = [set(_labels_of(atoms)) for atoms in frames]
        self.base.attributes.set('n_structures', len(frames))
        self.base.attributes.set('n_atoms', int(sum(len(atoms) for atoms in frames)))
        self.base.attributes.set('species', sorted({s for atoms in frames for s in atoms.get_chemical_symbols()}))
        self.base.attributes.set('labels', sorted(set.intersection(*present)))
        self.base.attributes.set('level_of_theory', levels.pop())


def _labels_of(atoms: ase.Atoms) -> list[str]:
    found = [key for key in _FRAME_LABELS if key in atoms.info]
    found += [key for key in _ATOM_LABELS if key in atoms.arrays]
    if atoms.calc is not None:
        # ase's extxyz reader moves calculator properties (``dipole`` too) from info/arrays into the calculator.
        found += [key for key in ('energy', 'forces', 'stress', 'dipole') if key in atoms.calc.results]
    return found


def _read_frames(content: bytes) -> list[ase.Atoms]:
    try:
        frames = ase.io.read(io.StringIO(content.decode()), index=':', format='extxyz')
    except Exception as exception:
        raise ValueError(f'Not a readable extxyz dataset: {exception}') from exception
    if not frames:
        raise ValueError('The extxyz dataset holds no structures.')
    for index, atoms in enumerate(frames):
        if not np.all(np.isfinite(atoms.positions)):
            raise ValueError(f'Frame {index} has non-finite positions.')
    return frames
