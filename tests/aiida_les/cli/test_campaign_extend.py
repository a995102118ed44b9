"""``aiida-les campaign extend``: what it reuses, the limits it sets, and the cases it refuses."""

import pytest


@pytest.fixture
def extend(run_aiida_les):
    return lambda *args: run_aiida_les('campaign', 'extend', *args)


def test_dry_run_says_what_is_reused(generate_campaign_node, extend):
    previous = generate_campaign_node(complete=1)
    result = extend(previous.pk, '--label-budget', 3, '--dry-run')
    assert result.exit_code == 0, result.output
    assert f'Reused from campaign {previous.pk}: initial labels (2 training, 2 held-out frames)' in result.output
    assert 'the committee of generation 0 (2 models)' in result.output
    assert 'generations 1 to 1 at most, label budget 10 (7 used so far)' in result.output


def test_killed_campaign_needs_force(generate_campaign_node, extend):
    previous = generate_campaign_node(complete=1, interrupted=True, parameters={'max_generations': 3})
    refused = extend(previous.pk, '--dry-run')
    assert refused.exit_code != 0
    assert f'Campaign {previous.pk} is still waiting' in refused.output
    forced = extend(previous.pk, '--dry-run', '--force')
    assert forced.exit_code == 0, forced.output
    assert 'not generation 1, which did not complete' in forced.output
    assert 'generations 1 to 2 at most, label budget 12 (7 used so far)' in forced.output


def test_refusals(generate_campaign_node, extend):
    pk = generate_campaign_node(complete=1).pk
    cases = [
        ((), 'give extra_label_budget and/or extra_generations'),
        (('--label-budget', 3, '--use-cache'), '--use-cache needs --run'),
        (('--label-budget', 3), 'no broker, so nothing can be submitted: use --run'),  # the test profile has none
        (('--label-budget', 0), "Invalid value for '-b' / '--label-budget'"),
    ]
    for args, message in cases:
        result = extend(pk, *args)
        assert result.exit_code != 0, args
        assert message in result.output, result.output
