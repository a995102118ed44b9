"""End to end: a charged seed (OH- + 3 H2O, periodic, total charge -1) on the `fast` protocol with real CP2K.

The charge must reach every step: the initial labels, the MD configuration and its frames, the selected frames and
their CP2K labels, the merged dataset. Before, the MD ran at charge 0, its frames were refused by the labeller
(39 electrons at multiplicity 1) and the campaign ended with exit 0 and no labels added.
"""

import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from les_model.data.synthetic import water_like_box
from workchains.active_learning import LesActiveLearningWorkChain

# About 45 s alone, 110 s on a loaded 2-core machine: in the `slow` set (`pytest -m slow`).
pytestmark = [
    pytest.mark.skipif(shutil.which('cp2k.psmp') is None, reason='CP2K (cp2k.psmp) is not installed'),
    pytest.mark.slow,
]


def hydroxide_in_water():
    """OH- and three H2O in a periodic box of about 4.9 Å (11 atoms): one H taken off a water of a 4-water box."""
    box = water_like_box(4, seed=0)
    del box[1]
    return box


def test_charged_seed_campaign(codes):
    """Labels are added at charge -1 in the explored generation, and the campaign exits 0."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        {'train': codes['les-train'], 'md': codes['les-md'], 'evaluate': codes['les-eval'], 'label': codes['cp2k']},
        {'hydroxide': orm.StructureData(ase=hydroxide_in_water())},
        protocol='fast',
        overrides={'parameters': {'total_charges': {'hydroxide': -1}}},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    summary = results['summary'].get_dict()
    assert summary['n_labels_added'] > 0, summary
    assert summary['n_generations_without_labels'] == 0

    # MD ran at -1 and says so on every frame.
    md_jobs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.md']
    assert md_jobs
    for job in md_jobs:
        assert job.inputs.config['total_charge'] == -1.0
        assert job.inputs.config['multiplicity'] == 1
        assert np.all(job.outputs.trajectory.get_array('total_charge') == -1.0)

    # Every CP2K label, initial and explored, was computed at -1 and the dataset frames carry it.
    cp2k_jobs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.cp2k']
    assert {job.inputs.total_charge.value for job in cp2k_jobs} == {-1}
    frames = results['dataset'].get_ase() + results['validation_dataset'].get_ase()
    assert {int(atoms.info['total_charge']) for atoms in frames} == {-1}
    explored = [atoms for atoms in frames if atoms.info.get('origin') == 'md']
    assert len(explored) == summary['n_labels_added']
    evaluation = next(n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.evaluate')
    assert {int(a.info['total_charge']) for a in evaluation.inputs.dataset.get_ase()} == {-1}
