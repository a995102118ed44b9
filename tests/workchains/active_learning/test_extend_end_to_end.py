"""End to end: a finished `fast` campaign extended by `aiida-les campaign extend --run` with a small label budget."""

import re
import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from workchains.active_learning.history import campaign_history

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which('cp2k.psmp') is None, reason='CP2K (cp2k.psmp) is not installed'),
]

CP2K = 'aiida.calculations:les.cp2k'


def structure_key(atoms) -> tuple:
    """Identify a structure by its cell and positions (Å, rounded well below any MD displacement)."""
    return tuple(np.round(np.concatenate([atoms.cell.array.ravel(), atoms.positions.ravel()]), 5))


def labelled_structures(campaign: orm.WorkChainNode) -> list[tuple]:
    """Structure keys of every CP2K calculation the campaign ran (restarts of one structure count once each)."""
    calcs = [node for node in campaign.called_descendants if node.process_type == CP2K]
    return [structure_key(node.inputs.structure.get_ase()) for node in calcs]


def test_extend_finished_campaign(demo, codes, run_aiida_les):
    """Nothing labelled twice, generation numbering goes on, the final dataset holds every earlier label."""
    _, first = run_get_node(demo.demo_builder(protocol='fast', overrides={}))
    assert first.is_finished_ok, first.exit_message
    first_rows = first.outputs.summary['generations']
    assert [row['generation'] for row in first_rows] == [0]

    result = run_aiida_les('campaign', 'extend', first.pk, '--label-budget', 3, '--run')
    assert result.exit_code == 0, result.output
    assert f'Reused from campaign {first.pk}: initial labels' in result.output
    second = orm.load_node(int(re.search(r'Running campaign (\d+)', result.output).group(1)))
    assert second.is_finished_ok, second.exit_message

    # Generation numbering continues; the earlier generation is carried over unchanged.
    summary = second.outputs.summary.get_dict()
    assert [row['generation'] for row in summary['generations']] == [0, 1]
    assert summary['generations'][0] == first_rows[0]
    called = {link.link_label for link in second.base.links.get_outgoing().all()}
    assert not any(label.startswith(('initial_', 'split_', 'generation_00')) for label in called), called
    assert any(label.startswith('generation_01_train') for label in called)
    history = campaign_history(second)
    assert [(row.generation, row.campaign_pk) for row in history] == [(0, first.pk), (1, second.pk)]
    shown = run_aiida_les('campaign', 'show', second.pk)
    assert f'Continues campaign {first.pk}' in shown.output
    logs = ' '.join(log.message for log in orm.Log.collection.get_logs_for(second))
    assert f'continuing campaign {first.pk} at generation 1' in logs

    # No seed, initial or earlier-selected structure is labelled again; only this generation's selection is.
    new_labels = labelled_structures(second)
    assert set(new_labels).isdisjoint(labelled_structures(first))
    selected = second.outputs.summary['generations'][1]['n_selected']
    assert 0 < len(set(new_labels)) <= selected <= 3

    # The committee was warm-started from the first campaign's, on its final dataset; the held-out set is the same.
    first_models = {model.uuid for model in first.outputs.models.values()}
    parents = {
        link.node.uuid
        for node in second.called_descendants
        for link in node.base.links.get_incoming(link_label_filter='parent_model').all()
    }
    assert parents == first_models
    assert second.outputs.validation_dataset.uuid == first.outputs.validation_dataset.uuid

    # Every earlier label is in the final dataset, next to the new ones.
    old = first.outputs.dataset.get_ase()
    new = second.outputs.dataset.get_ase()
    n_labelled = summary['generations'][1]['n_labelled']
    assert len(new) == len(old) + n_labelled
    new_energies = {structure_key(atoms): atoms.get_potential_energy() for atoms in new}
    for atoms in old:
        assert new_energies[structure_key(atoms)] == pytest.approx(atoms.get_potential_energy())
