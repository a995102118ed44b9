"""Conversions between ase.Atoms and AiiDA StructureData, TrajectoryData and LesDatasetData nodes.

Units are those of ase: positions and cells in Å, energies in eV, forces in eV/Å. Per-frame labels travel through
``atoms.info`` (scalars, vectors) and ``atoms.arrays`` (per-atom arrays of shape ``(n_atoms, ...)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ase
import numpy as np
from aiida import orm

from aiida_les.data.dataset import LesDatasetData

__all__ = (
    'ase_to_structure',
    'ase_to_trajectory',
    'dataset_to_structures',
    'structure_to_ase',
    'structures_to_dataset',
    'trajectory_to_ase',
)


def ase_to_structure(atoms: ase.Atoms) -> orm.StructureData:
    """Return an unstored StructureData of ``atoms`` (cell, positions, symbols, periodicity).

    :raises TypeError: if ``atoms`` is not an ``ase.Atoms``.
    """
    if not isinstance(atoms, ase.Atoms):
        raise TypeError(f'expected an ase.Atoms, got {type(atoms).__name__}')
    return orm.StructureData(ase=atoms)


def structure_to_ase(structure: orm.StructureData) -> ase.Atoms:
    """Return the ase.Atoms of ``structure`` (cell in Å, positions in Å, pbc)."""
    if not isinstance(structure, orm.StructureData):
        raise TypeError(f'expected a StructureData, got {type(structure).__name__}')
    return structure.get_ase()


def structures_to_dataset(structures: Sequence[orm.StructureData | ase.Atoms], **kwargs) -> LesDatasetData:
    """Return an unstored, unlabelled LesDatasetData holding one frame per structure."""
    frames = [s if isinstance(s, ase.Atoms) else structure_to_ase(s) for s in structures]
    return LesDatasetData.from_ase(frames, **kwargs)


def dataset_to_structures(dataset: LesDatasetData) -> list[orm.StructureData]:
    """Return unstored StructureData nodes, one per frame of ``dataset`` (labels are dropped)."""
    return [ase_to_structure(atoms) for atoms in dataset.get_ase()]


def ase_to_trajectory(
    frames: Sequence[ase.Atoms],
    arrays: Mapping[str, np.ndarray] | None = None,
    info_keys: Sequence[str] = (),
    atom_keys: Sequence[str] = (),
    stepids: Sequence[int] | None = None,
    times: Sequence[float] | None = None,
) -> orm.TrajectoryData:
    """Return an unstored TrajectoryData of ``frames`` with optional per-frame arrays.

    All frames must have the same symbols (a trajectory has a fixed composition). Cells are stored for every frame,
    so variable-cell (NPT) runs survive the round trip.

    :param frames: the frames, ``n_frames`` of them.
    :param arrays: extra arrays, each with a first axis of length ``n_frames`` (e.g. ``'force_std'`` of shape
        ``(n_frames,)`` in eV/Å).
    :param info_keys: keys of ``atoms.info`` to collect into arrays of shape ``(n_frames, ...)``; frames lacking a
        key get NaN.
    :param atom_keys: keys of ``atoms.arrays`` (per-atom, shape ``(n_atoms, ...)``) to collect into arrays of shape
        ``(n_frames, n_atoms, ...)``; a key missing from any frame is skipped.
    :param stepids: MD step of each frame (default ``0 .. n_frames - 1``).
    :param times: time of each frame [fs] (default none).
    :raises ValueError: on an empty trajectory, changing composition or an array of the wrong length.
    """
    if len(frames) == 0:
        raise ValueError('A trajectory needs at least one frame, got none.')
    symbols = frames[0].get_chemical_symbols()
    for index, atoms in enumerate(frames):
        if atoms.get_chemical_symbols() != symbols:
            raise ValueError(
                f'Frame {index} has symbols {atoms.get_chemical_formula()}, expected the composition of '
                f'frame 0 ({frames[0].get_chemical_formula()}).'
            )
    positions = np.array([atoms.positions for atoms in frames], dtype=float)
    cells = np.array([np.asarray(atoms.cell) for atoms in frames], dtype=float)
    trajectory = orm.TrajectoryData()
    stepids = np.arange(len(frames)) if stepids is None else np.asarray(stepids, dtype=int)
    times = None if times is None else np.asarray(times, dtype=float)
    # Periodicity given explicitly: without it AiiDA assumes a 3D-periodic cell and warns (deprecated), once per run.
    pbc = tuple(bool(p) for p in frames[0].pbc)
    trajectory.set_trajectory(symbols=symbols, positions=positions, cells=cells, stepids=stepids, times=times, pbc=pbc)
    collected = dict(arrays or {})
    for key in info_keys:
        values = [atoms.info.get(key) for atoms in frames]
        present = [np.asarray(v, dtype=float) for v in values if v is not None]
        if not present:
            continue
        filler = np.full_like(present[0], np.nan)
        collected[key] = np.array([filler if v is None else np.asarray(v, dtype=float) for v in values])
    per_atom = []
    for key in atom_keys:
        if all(key in atoms.arrays for atoms in frames):
            collected[key] = np.array([atoms.arrays[key] for atoms in frames], dtype=float)
            per_atom.append(key)
    for name, value in collected.items():
        value = np.asarray(value)
        if value.shape[:1] != (len(frames),):
            raise ValueError(
                f'Array `{name}` must have a first axis of length {len(frames)} (frames), got shape {value.shape}.'
            )
        trajectory.set_array(name, value)
    trajectory.base.attributes.set('per_atom_arrays', per_atom)
    return trajectory


def trajectory_to_ase(trajectory: orm.TrajectoryData) -> list[ase.Atoms]:
    """Return the frames of ``trajectory`` as ase.Atoms.

    Per-frame extra arrays are put back: those listed in the ``per_atom_arrays`` attribute (shape
    ``(n_frames, n_atoms, ...)``) into ``atoms.arrays``, all others (shape ``(n_frames,)`` or ``(n_frames, k)``) into
    ``atoms.info``. Periodicity comes from the ``pbc`` attribute (all True when
    absent, AiiDA's own default for trajectories with cells).
    """
    if not isinstance(trajectory, orm.TrajectoryData):
        raise TypeError(f'expected a TrajectoryData, got {type(trajectory).__name__}')
    symbols = list(trajectory.symbols)
    positions = trajectory.get_positions()
    cells = trajectory.get_cells()
    pbc = trajectory.base.attributes.get('pbc', [True, True, True])
    n_frames = positions.shape[0]
    reserved = {'positions', 'cells', 'steps', 'times', 'velocities'}
    extras = {name: trajectory.get_array(name) for name in trajectory.get_arraynames() if name not in reserved}
    per_atom = set(trajectory.base.attributes.get('per_atom_arrays', []))
    frames = []
    for index in range(n_frames):
        cell = cells[index] if cells is not None else np.zeros((3, 3))
        atoms = ase.Atoms(symbols=symbols, positions=positions[index], cell=cell, pbc=pbc)
        for name, value in extras.items():
            item = value[index]
            if name in per_atom:
                atoms.arrays[name] = np.array(item)
            elif np.ndim(item) == 0:
                atoms.info[name] = float(item)
            else:
                atoms.info[name] = np.array(item)
        frames.append(atoms)
    return frames
