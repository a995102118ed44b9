"""get_builder_restart: continue a killed campaign or extend a finished one from what it left in the graph."""

import re

import pytest
from aiida import orm
from aiida.plugins import WorkflowFactory

from workchains.active_learning.history import campaign_history
from workchains.active_learning.parameters import DEFAULT_PARAMETERS
from workchains.active_learning.restart import check_restart
from workchains.active_learning.state import INTERRUPTED, campaign_state

LesActiveLearningWorkChain = WorkflowFactory('les.active_learning')


def _validate(generate_workchain, builder):
    """Instantiate the campaign from the builder: this runs every port and namespace validator."""
    return generate_workchain('les.active_learning', builder._inputs(prune=True))


def test_extend_finished_campaign(generate_campaign_node, generate_workchain):
    """The outputs become the new inputs; counters, budget and generation limit continue from the old run."""
    previous = generate_campaign_node(complete=2)
    builder = LesActiveLearningWorkChain.get_builder_restart(previous, extra_label_budget=5)

    assert builder.dataset.uuid == previous.outputs.dataset.uuid
    assert builder.validation_dataset.uuid == previous.outputs.validation_dataset.uuid
    assert {key: model.uuid for key, model in builder.restart.models.items()} == {
        key: model.uuid for key, model in previous.outputs.models.items()
    }
    state = builder.restart.state.get_dict()
    assert state['previous_campaign'] == previous.uuid
    assert state['generation'] == 2
    assert state['labels_used'] == 4 + 2 * 3  # initial frames (2 train + 2 held out) + two generations of 3
    assert state['statistics'] == previous.outputs.summary['generations']
    parameters = builder.parameters.get_dict()
    assert parameters['label_budget'] == 10 + 5
    assert parameters['max_generations'] == 2 + 2  # 5 labels at 3 per generation
    # Seeds and codes are the previous campaign's own.
    assert builder.structures['nacl'].uuid == previous.inputs.structures.nacl.uuid
    assert builder.train.train.code.uuid == previous.inputs.train.train.code.uuid
    process = _validate(generate_workchain, builder)
    assert process.node.inputs.restart.state['generation'] == 2


def test_extend_limits(generate_campaign_node):
    """A finished campaign needs more budget or generations; more generations alone keep the total budget."""
    previous = generate_campaign_node(complete=1)
    with pytest.raises(ValueError, match=r'finished \(max_generations\); give extra_label_budget'):
        LesActiveLearningWorkChain.get_builder_restart(previous)
    with pytest.raises(ValueError, match='extra_label_budget must be >= 1'):
        LesActiveLearningWorkChain.get_builder_restart(previous, extra_label_budget=0)
    builder = LesActiveLearningWorkChain.get_builder_restart(previous, extra_generations=3)
    parameters = builder.parameters.get_dict()
    assert parameters['max_generations'] == 1 + 3
    assert parameters['label_budget'] == 12  # the fast protocol's total, 7 of it used


def test_budget_used_up_is_refused(generate_campaign_node):
    previous = generate_campaign_node(complete=1, parameters={'label_budget': 7})
    with pytest.raises(ValueError, match=r'label_budget \(7\) must exceed the 7 labels already used'):
        LesActiveLearningWorkChain.get_builder_restart(previous, extra_generations=1)


def test_other_level_of_theory_is_refused(
    generate_campaign_node, generate_workchain, campaign_codes, generate_structure
):
    """Labels of another protocol cannot join the dataset: the builder and the workchain both say why."""
    previous = generate_campaign_node(complete=1)
    balanced = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'nacl': generate_structure('NaCl')}, protocol='balanced'
    )
    level = previous.outputs.dataset.level_of_theory
    assert level.startswith('cp2k/fast/')
    with pytest.raises(ValueError, match='never mixes levels of theory') as error:
        LesActiveLearningWorkChain.get_builder_restart(previous, extra_label_budget=3, builder=balanced)
    assert level in str(error.value)
    assert 'cp2k/balanced/' in str(error.value)

    # A hand-made builder with the restart inputs and other labels is refused before anything runs.
    builder = LesActiveLearningWorkChain.get_builder_restart(previous, extra_label_budget=3)
    builder.label = {key: value for key, value in balanced._inputs(prune=True)['label'].items()}
    with pytest.raises(ValueError, match='never mixes levels of theory'):
        _validate(generate_workchain, builder)


def test_not_a_campaign_is_refused():
    node = orm.WorkflowNode(process_type='aiida.workflows:les.train.base').store()
    with pytest.raises(ValueError, match=f'Node {node.pk} is a .*, not a les.active_learning campaign'):
        LesActiveLearningWorkChain.get_builder_restart(node, extra_label_budget=3)


def test_continue_killed_campaign(generate_campaign_node, generate_workchain):
    """Killed during generation 1: generation 0's dataset and committee are reused, generation 1 runs again."""
    previous = generate_campaign_node(complete=1, interrupted=True, parameters={'max_generations': 3})
    assert not previous.is_terminated
    state = campaign_state(previous)
    assert state.generation == 1
    assert state.labels_used == 4 + 3
    merge = previous.base.links.get_outgoing(link_label_filter='generation_00_merge').one().node
    assert state.dataset.uuid == merge.outputs.result.uuid
    trainings = [
        previous.base.links.get_outgoing(link_label_filter=f'generation_00_train_{member}').one().node
        for member in range(2)
    ]
    assert [model.uuid for model in state.models.values()] == [node.outputs.model.uuid for node in trainings]
    (row,) = state.statistics
    assert row['heldout_forces_rmse_eV_per_A'] == pytest.approx(0.25)
    assert (row['accurate_fraction'], row['n_selected'], row['n_labelled']) == (0.5, 3, 3)
    assert row['stopping'] == INTERRUPTED
    assert 'generation 1, which did not complete' in state.describe()

    builder = LesActiveLearningWorkChain.get_builder_restart(previous)
    parameters = builder.parameters.get_dict()
    assert (parameters['label_budget'], parameters['max_generations']) == (12, 3)  # the killed run's own limits
    node = _validate(generate_workchain, builder).node

    # The continuation's history starts with the killed campaign's complete generation.
    history = campaign_history(node)
    assert [(entry.generation, entry.campaign_pk) for entry in history] == [(0, previous.pk)]


def test_killed_before_initial_split_starts_again(generate_workchain, campaign_codes, generate_structure):
    """Nothing finished to reuse: the builder is the original campaign again (caching can reuse its labels)."""
    original = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'nacl': generate_structure('NaCl')}, protocol='fast'
    )
    previous = generate_workchain('les.active_learning', original._inputs(prune=True)).node
    builder = LesActiveLearningWorkChain.get_builder_restart(previous)
    assert 'dataset' not in builder
    assert not builder.restart
    assert 'nothing finished to reuse' in builder.metadata.description


@pytest.mark.parametrize(
    ('parameters', 'state', 'n_models', 'message'),
    [
        ({'max_generations': 2}, {'generation': 2, 'labels_used': 5}, 2, r'max_generations \(2\) must exceed'),
        ({'label_budget': 5}, {'generation': 1, 'labels_used': 5}, 2, r'label_budget \(5\) must exceed'),
        ({'committee_size': 4}, {'generation': 1, 'labels_used': 5}, 2, 'holds 2 models but committee_size is 4'),
        ({}, {'generation': 1}, 2, 'lacks'),
    ],
)
def test_check_restart(parameters, state, n_models, message):
    state = {'previous_campaign': 'uuid', 'statistics': [], **state}
    error = check_restart({**DEFAULT_PARAMETERS, **parameters}, state, n_models)
    assert error is not None
    assert re.search(message, error), error
