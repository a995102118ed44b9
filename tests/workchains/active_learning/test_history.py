"""generation_record and campaign_history on a stored campaign with the children a real campaign leaves."""

import pytest

from workchains.active_learning.history import (
    campaign_history,
    find_campaigns,
    generation_children,
    generation_record,
    is_campaign,
)


def test_generation_record_reads_every_step(generate_campaign_node):
    campaign = generate_campaign_node(complete=2)
    assert is_campaign(campaign)
    assert campaign.pk in {node.pk for node in find_campaigns()}
    steps = generation_children(campaign)
    assert sorted(steps) == [0, 1]
    assert sorted(steps[1]) == ['evaluate', 'label', 'md', 'merge', 'select', 'train']
    record = generation_record(1, steps[1], campaign.pk)
    assert (record.generation, record.campaign_pk, record.n_models) == (1, campaign.pk, 2)
    assert record.train_force_rmse_mev_per_ang == [300.0, 300.0]
    # The fixture's MD run finished without a trajectory: counted as failed, and no frame deviation to read.
    assert (record.n_md_runs, record.n_md_failed, record.force_std_ev_per_ang) == (1, 1, [])
    assert record.heldout_force_rmse_mev_per_ang == 250.0
    assert record.heldout_force_rmse_ev_per_ang == pytest.approx(0.25)
    assert record.heldout_energy_rmse_mev_per_atom == 12.0
    assert (record.n_frames, record.accurate_fraction, record.counts) == (21, 0.5, {'candidate': 10})
    assert (record.n_selected, record.n_labelled, record.n_label_failed) == (3, 3, 0)
    assert record.dataset_size == 2 + 3 + 3  # initial training frames and two generations of labels
    assert (record.no_labels_added, record.stopping) == (None, None)  # the stopping rule's, not the graph's


def test_history_of_an_interrupted_campaign(generate_campaign_node):
    """The generation that stopped after training is in the history, with what it did so far."""
    campaign = generate_campaign_node(complete=1, interrupted=True)
    history = campaign_history(campaign)
    assert [record.generation for record in history] == [0, 1]
    assert (history[1].n_models, history[1].n_selected, history[1].dataset_size) == (2, 0, None)
    assert history[1].heldout_force_rmse_mev_per_ang is None
