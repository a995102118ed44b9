"""Tests for the :func:`aiida_les.calculations.functions.extract_frames.extract_frames` calcfunction."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_les.calculations.functions.extract_frames import extract_frames
from aiida_les.utils.conversion import ase_to_trajectory


def _trajectory(n_frames: int = 3) -> orm.TrajectoryData:
    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(0.05, seed=index)
        frames.append(atoms)
    return ase_to_trajectory(frames)


def test_frames_linked_to_their_trajectory():
    """The requested frames come out as StructureData created by the calcfunction whose one input is the trajectory."""
    trajectory = _trajectory()
    outputs, node = extract_frames.run_get_node(trajectory=trajectory, frames=orm.Dict({'frame_0001': 2}))
    assert node.is_finished_ok
    structure = outputs['frame_0001']
    assert structure.creator.uuid == node.uuid
    assert np.allclose(structure.get_ase().positions, trajectory.get_positions()[2])
    assert structure.pbc == (True, True, True)
    assert sorted(node.base.links.get_incoming().all_link_labels()) == ['frames', 'trajectory']


@pytest.mark.parametrize(('frames', 'message'), [({}, '`frames` is empty'), ({'frame_0000': 3}, 'frames 0..2')])
def test_bad_request_refused(frames, message):
    with pytest.raises(ValueError, match=message):
        extract_frames(trajectory=_trajectory(), frames=orm.Dict(frames))
