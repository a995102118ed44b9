"""The campaign's link labels and process types: what the workchain writes is what its readers find."""

import pytest
from aiida.plugins import WorkflowFactory

from aiida_les.parsers.train import CAMPAIGN_PROCESS_TYPE
from workchains.active_learning.links import (
    EXTRACT,
    KINDS,
    PROCESS_TYPES,
    generation_link,
    generation_link_like,
    parse_generation_link,
)


@pytest.mark.parametrize('kind', KINDS)
def test_every_read_back_kind_parses(kind):
    assert parse_generation_link(generation_link(7, kind)) == (7, kind)
    assert parse_generation_link(generation_link(12, kind, 'nacl_300K')) == (12, kind)


def test_labels_that_are_not_steps_are_not_read():
    assert generation_link(3, 'train', 1) == 'generation_03_train_1'
    assert generation_link(0, 'md', 'water_300K') == 'generation_00_md_water_300K'
    assert parse_generation_link(generation_link(1, EXTRACT, 'md_0')) is None
    assert parse_generation_link('generation_01_labelled') is None
    assert parse_generation_link('split_initial') is None
    assert generation_link_like('train', 0) == 'generation_%_train_0'
    with pytest.raises(ValueError, match='Unknown step kind'):
        generation_link(0, 'labels')


def test_process_types_match_the_entry_point_and_the_train_parser():
    """The process type AiiDA records for a campaign, and the one the train parser looks for, are the readers' own."""
    assert WorkflowFactory('les.active_learning').build_process_type() == PROCESS_TYPES[0]
    assert CAMPAIGN_PROCESS_TYPE in PROCESS_TYPES
