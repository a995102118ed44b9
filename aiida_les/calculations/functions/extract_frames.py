"""extract_frames: take frames out of one MD trajectory as StructureData, recorded in the provenance graph.

One call per trajectory, so each extracted ``StructureData`` has exactly one trajectory upstream:
trajectory -> ``extract_frames`` -> StructureData -> labelling job. The campaign calls it for the frames that
:func:`~aiida_les.calculations.functions.select_structures.select_structures` chose.
"""

from __future__ import annotations

import ase
from aiida import orm
from aiida.engine import calcfunction

from aiida_les.utils.conversion import trajectory_to_ase

__all__ = ('extract_frames',)


@calcfunction
def extract_frames(trajectory: orm.TrajectoryData, frames: orm.Dict) -> dict[str, orm.StructureData]:
    """Return the requested frames of ``trajectory`` (positions and cell in Å, periodicity) as StructureData.

    :param trajectory: an MD trajectory (``les.md`` output).
    :param frames: output link label -> frame index in ``trajectory`` (0-based, not the MD step), e.g.
        ``{'frame_0003': 17}``.
    :return: one StructureData per entry of ``frames``, under the same labels.
    :raises ValueError: for an empty request or an index outside the trajectory.
    """
    requested = frames.get_dict()
    if not requested:
        raise ValueError('extract_frames: `frames` is empty; name at least one frame to extract.')
    atoms_list = trajectory_to_ase(trajectory)
    outputs = {}
    for label, index in requested.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(atoms_list):
            last = len(atoms_list) - 1
            raise ValueError(
                f'extract_frames: `{label}` asks for frame {index!r}; the trajectory has frames 0..{last}.'
            )
        atoms = atoms_list[index]
        clean = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        outputs[label] = orm.StructureData(ase=clean)
    return outputs
