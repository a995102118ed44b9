"""GenerationRecord: the stored keys its readers rely on, old summary rows, type errors, the count of labels used."""

import pytest
from pydantic import ValidationError

from workchains.active_learning.record import UNITS, GenerationRecord, count_labels_used


def test_stored_keys_and_round_trip():
    record = GenerationRecord(
        generation=2,
        campaign_pk=17,
        heldout_force_rmse_mev_per_ang=118.43,
        force_std_ev_per_ang=[0.1, 0.2],
        n_labelled=3,
        counts={'accurate': 4, 'candidate': 6},
    )
    stored = record.stored()
    # The keys of the summary rows and summary.json that the CLI, restarts and tests read.
    assert stored['heldout_forces_rmse'] == 118.43  # meV/Å, as les-eval wrote it
    assert stored['heldout_forces_rmse_eV_per_A'] == 118.43 / 1000.0
    assert stored['campaign'] == 17
    assert 'force_std_ev_per_ang' not in stored  # per-frame arrays stay out of the database and the export
    assert set(UNITS) <= set(stored)
    back = GenerationRecord.from_stored(stored)
    assert back == record.model_copy(update={'force_std_ev_per_ang': []})
    assert back.stored() == stored


def test_rows_stored_before_the_record_read_back():
    """Summary rows of older campaigns hold the held-out force RMSE in eV/Å only, and fewer keys."""
    row = {'generation': 0, 'heldout_forces_rmse_eV_per_A': 0.25, 'n_labelled': 3, 'stopping': 'stop'}
    record = GenerationRecord.from_stored(row)
    assert record.heldout_force_rmse_mev_per_ang == pytest.approx(250.0)
    assert record.heldout_force_rmse_ev_per_ang == pytest.approx(0.25)
    assert (record.n_labelled, record.no_labels_added, record.counts) == (3, None, {})


def test_a_wrong_type_names_the_key():
    with pytest.raises(ValidationError, match='n_labelled'):
        GenerationRecord.from_stored({'generation': 0, 'n_labelled': 'three'})


def test_labels_used():
    records = [GenerationRecord(generation=g, n_labelled=n) for g, n in ((1, 3), (2, 0), (3, 2))]
    assert count_labels_used(before=9, n_initial=0, records=records) == 14
    assert count_labels_used(before=0, n_initial=4, records=[]) == 4
