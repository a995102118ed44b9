"""The campaign's stopping rule: each reason to stop, and the line that names every criterion."""

from workchains.active_learning.stopping import evaluate_stopping_rule


def test_stopping_rule_reasons():
    converged = evaluate_stopping_rule([0.5, 0.97, 0.99], [None, 0.2, 0.05], 10, 100, 2, 10)
    assert converged.stop
    assert converged.reason == 'converged'
    assert 'accurate fraction 99.0%' in converged.message
    # High accurate fraction but held-out error too large: go on.
    assert not evaluate_stopping_rule([0.97, 0.99], [0.3, 0.3], 10, 100, 1, 10).stop
    assert evaluate_stopping_rule([0.1], [0.5], 100, 100, 0, 10).reason == 'label_budget'
    assert evaluate_stopping_rule([0.1, 0.2], [0.5, 0.4], 10, 100, 1, 2).reason == 'max_generations'


def test_stopping_rule_counts_generations_without_labels():
    """Generations whose selected frames could all not be labelled count; `patience` of them in a row stop it."""
    going_on = evaluate_stopping_rule([0.1, 0.2], [0.5, 0.4], 10, 100, 1, 10, patience=2, unlabelled_generations=1)
    assert not going_on.stop
    assert '1 generation(s) in a row with no label added' in going_on.message
    stopped = evaluate_stopping_rule([0.1, 0.2], [0.5, 0.4], 10, 100, 1, 10, patience=2, unlabelled_generations=2)
    assert (stopped.stop, stopped.reason) == (True, 'labels_refused')
    assert stopped.message.endswith('stopped: the selected frames cannot be labelled')
