"""``aiida-les campaign list|show|export`` on a campaign node with the children a real campaign leaves."""

import json

import pytest
from aiida import orm


@pytest.fixture
def campaign(generate_campaign_node):
    return generate_campaign_node(complete=2)


def test_list_and_show(run_aiida_les, campaign):
    listed = run_aiida_les('campaign', 'list')
    assert listed.exit_code == 0, listed.output
    row = next(line.split() for line in listed.output.splitlines() if line.split()[:1] == [str(campaign.pk)])
    assert row[3:] == ['finished', '0', '2', 'max_generations']

    shown = run_aiida_les('campaign', 'show', campaign.pk)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f'Campaign {campaign.pk}: finished, exit status 0'
    generation_rows = [line.split() for line in lines if line.split()[1:2] == [str(campaign.pk)]]
    assert len(generation_rows) == 2
    # Models, MD (the fixture's MD run left no trajectory), frames, force std, accurate, candidates, selected,
    # labelled, dataset, held-out force RMSE (meV/Å)
    expected = ['2', '1', '(1', 'failed)', '0', '-', '50%', '10', '3', '3', '(0', 'failed)', '8', '250.0']
    assert generation_rows[1][2:] == expected
    assert lines[-1] == 'Stopped: max_generations'


def test_refuses_a_node_that_is_not_a_campaign(run_aiida_les, campaign, tmp_path):
    training = campaign.base.links.get_outgoing(link_label_filter='generation_00_train_0').one().node
    label = campaign.base.links.get_outgoing(link_label_filter='generation_00_label').one().node
    for command, args in (('show', []), ('export', ['-o', tmp_path / 'out']), ('extend', ['--dry-run'])):
        for node in (training, label):
            result = run_aiida_les('campaign', command, node.pk, *args)
            assert result.exit_code != 0
            assert f'<{node.pk}> is not a campaign (les.active_learning)' in result.output
            assert 'Campaign' not in result.output
    assert not (tmp_path / 'out').exists()


def test_export_writes_committee_datasets_summary_and_plots(run_aiida_les, campaign, tmp_path):
    target = tmp_path / 'out'
    result = run_aiida_les('campaign', 'export', campaign.pk, '-o', target)
    assert result.exit_code == 0, result.output
    expected = {'model_0.pt', 'model_1.pt', 'dataset.extxyz', 'validation.extxyz', 'summary.json'}
    assert expected | {'error_vs_labels.png', 'uncertainty.png'} == {path.name for path in target.iterdir()}
    assert (target / 'model_1.pt').read_bytes() == campaign.outputs.models.member_1.get_content(mode='rb')
    summary = json.loads((target / 'summary.json').read_text())
    assert summary['stop_reason'] == 'max_generations'
    assert [row['heldout_forces_rmse'] for row in summary['history']] == [250.0, 250.0]
    assert summary['units']['heldout_forces_rmse'].startswith('meV/Å')


def test_export_refuses_existing_directory_without_force(run_aiida_les, campaign, tmp_path):
    target = tmp_path / 'out'
    target.mkdir()
    (target / 'summary.json').write_text('mine')
    refused = run_aiida_les('campaign', 'export', campaign.pk, '-o', target)
    assert refused.exit_code != 0
    assert f'{target} exists; pass --force to write into it' in refused.output
    assert (target / 'summary.json').read_text() == 'mine'

    forced = run_aiida_les('campaign', 'export', campaign.pk, '-o', target, '--force')
    assert forced.exit_code == 0, forced.output
    assert json.loads((target / 'summary.json').read_text())['pk'] == campaign.pk


def test_export_turns_os_errors_into_one_line(run_aiida_les, campaign, tmp_path):
    blocked = tmp_path / 'a_file'
    blocked.write_text('')
    for target, message in (
        (blocked, f'{blocked} exists and is not a directory'),
        (blocked / 'out', f'Cannot write {blocked / "out"}: '),
    ):
        result = run_aiida_les('campaign', 'export', campaign.pk, '-o', target)
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith('Critical: ')
        assert message in lines[0]
    assert 'Traceback' not in result.output


def test_list_without_campaigns(aiida_profile_clean, run_aiida_les):
    assert not orm.QueryBuilder().append(orm.WorkChainNode).count()
    result = run_aiida_les('campaign', 'list')
    assert result.exit_code == 0
    assert 'No campaigns in this profile.' in result.output
