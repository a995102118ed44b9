"""``aiida-les campaign list|show|export``: follow and collect active-learning campaigns."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.params import arguments
from aiida.cmdline.utils import decorators, echo

from aiida_les.cli.root import cmd_root


@cmd_root.group('campaign')
def campaign():
    """Active-learning campaigns (``les.active_learning``)."""


@campaign.command('list')
@click.option('-l', '--limit', default=20, show_default=True)
@decorators.with_dbenv()
def campaign_list(limit):
    """List campaigns, newest first, with their state and stop reason."""
    from tabulate import tabulate

    from aiida_les.campaign import find_campaigns

    rows = []
    for node in find_campaigns(limit):
        summary = node.outputs.summary.get_dict() if 'summary' in node.outputs else {}
        rows.append(
            [
                node.pk,
                node.ctime.strftime('%Y-%m-%d %H:%M'),
                node.process_state.value,
                node.exit_status,
                summary.get('n_generations', '-'),
                summary.get('stop_reason', '-'),
            ]
        )
    if not rows:
        echo.echo_report('No campaigns in this profile.')
        return
    echo.echo(tabulate(rows, headers=['PK', 'Created', 'State', 'Exit', 'Generations', 'Stop reason']))


@campaign.command('show')
@arguments.PROCESS()
@decorators.with_dbenv()
def campaign_show(process):
    """Per generation: models, MD runs, frames explored, uncertainty, candidates, labels, failures, errors."""
    from tabulate import tabulate

    from aiida_les.campaign import campaign_history

    rows = []
    for row in campaign_history(process):
        force_std = row['force_std']
        rows.append(
            [
                row['generation'],
                row['n_models'],
                f'{row["n_md"]} ({row["n_md_failed"]} failed)',
                row['n_frames'],
                f'{force_std.mean():.3f}/{force_std.max():.3f}' if len(force_std) else '-',
                '-' if row['accurate_fraction'] is None else f'{row["accurate_fraction"]:.0%}',
                row['counts'].get('candidate', '-'),
                row['n_selected'],
                f'{row["n_labelled"]} ({row["n_label_failed"]} failed)',
                row['dataset_size'] or '-',
                '-' if row['heldout_forces_rmse'] is None else f'{row["heldout_forces_rmse"]:.1f}',
            ]
        )
    echo.echo(f'Campaign {process.pk}: {process.process_state.value}, exit status {process.exit_status}')
    headers = [
        'Gen',
        'Models',
        'MD',
        'Frames',
        'Force std mean/max (eV/Å)',
        'Accurate',
        'Candidates',
        'Selected',
        'Labelled',
        'Dataset',
        'Held-out F RMSE (meV/Å)',
    ]
    echo.echo(tabulate(rows, headers=headers))
    if 'summary' in process.outputs:
        echo.echo(f'Stopped: {process.outputs.summary["stop_reason"]}')


@campaign.command('export')
@arguments.PROCESS()
@click.option('-o', '--output', type=click.Path(path_type=pathlib.Path), default=None, help='Target directory.')
@decorators.with_dbenv()
def campaign_export(process, output):
    """Write the final committee, datasets, summary.json and PNG plots to a directory."""
    from aiida_les.campaign import export_campaign

    written = export_campaign(process, output or pathlib.Path(f'campaign_{process.pk}'))
    for what, path in written.items():
        echo.echo(f'{what:>20}: {path}')
