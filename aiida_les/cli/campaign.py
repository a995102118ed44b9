"""``aiida-les campaign list|show|export|extend``: follow, collect and continue active-learning campaigns.

The campaign and its readers live in :mod:`workchains.active_learning`, a layer above this plugin package: the commands
import them when they run, never when the CLI loads.
"""

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

    from workchains.active_learning.history import find_campaigns

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
    import numpy as np
    from tabulate import tabulate

    from workchains.active_learning.history import campaign_history, previous_campaign

    _require_campaign(process)
    rows = []
    for record in campaign_history(process):
        force_std = np.asarray(record.force_std_ev_per_ang)  # eV/Å, one value per explored MD frame
        error = record.heldout_force_rmse_mev_per_ang
        rows.append(
            [
                record.generation,
                record.campaign_pk,
                record.n_models,
                f'{record.n_md_runs} ({record.n_md_failed} failed)',
                len(force_std),
                f'{force_std.mean():.3f}/{force_std.max():.3f}' if len(force_std) else '-',
                '-' if record.accurate_fraction is None else f'{record.accurate_fraction:.0%}',
                record.counts.get('candidate', '-'),
                record.n_selected,
                f'{record.n_labelled} ({record.n_label_failed} failed)',
                record.dataset_size or '-',
                '-' if error is None else f'{error:.1f}',
            ]
        )
    echo.echo(f'Campaign {process.pk}: {process.process_state.value}, exit status {process.exit_status}')
    previous = previous_campaign(process)
    if previous is not None:
        echo.echo(f'Continues campaign {previous.pk}; its generations come first (column Campaign).')
    headers = [
        'Gen',
        'Campaign',
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
    # Numbers are already rounded to what they mean; tabulate would reparse and reformat them.
    echo.echo(tabulate(rows, headers=headers, disable_numparse=True))
    if 'summary' in process.outputs:
        echo.echo(f'Stopped: {process.outputs.summary["stop_reason"]}')


@campaign.command('export')
@arguments.PROCESS()
@click.option(
    '-o',
    '--output',
    type=click.Path(path_type=pathlib.Path),
    default=None,
    help='Target directory, created if missing [default: campaign_<PK> in the current directory].',
)
@click.option('-f', '--force', is_flag=True, help='Write into an existing directory, replacing files of the same name.')
@decorators.with_dbenv()
def campaign_export(process, output, force):
    """Write the final committee, datasets, summary.json and PNG plots to a directory."""
    from workchains.active_learning.export import export_campaign

    _require_campaign(process)
    directory = output or pathlib.Path(f'campaign_{process.pk}')
    if directory.exists() and not directory.is_dir():
        echo.echo_critical(f'{directory} exists and is not a directory; pass another path with --output.')
    if directory.exists() and not force:
        echo.echo_critical(f'{directory} exists; pass --force to write into it, or another path with --output.')
    try:
        written = export_campaign(process, directory)
    except OSError as exception:
        where = exception.filename or directory
        echo.echo_critical(f'Cannot write {where}: {exception.strerror or exception}.')
    for what, path in written.items():
        echo.echo(f'{what:>20}: {path}')


@campaign.command('extend')
@arguments.PROCESS()
@click.option(
    '-b',
    '--label-budget',
    type=click.IntRange(min=1),
    default=None,
    help='DFT labels the new run may add to those used so far [default: a killed campaign keeps its budget].',
)
@click.option(
    '-g',
    '--max-generations',
    type=click.IntRange(min=1),
    default=None,
    help='Generations the new run may add [default: as many as the budget fills; a killed campaign keeps its limit].',
)
@click.option('--run', 'run_here', is_flag=True, help='Run in this process until it ends instead of submitting.')
@click.option('--use-cache', is_flag=True, help='With --run: reuse finished calculations through AiiDA caching.')
@click.option('-f', '--force', is_flag=True, help='Continue a campaign still marked running whose process died.')
@click.option('--dry-run', is_flag=True, help='Say what would be reused and the new limits; start nothing.')
@decorators.with_dbenv()
def campaign_extend(process, label_budget, max_generations, run_here, use_cache, force, dry_run):
    """Continue a killed campaign, or extend a finished one, from its last complete generation.

    The new campaign starts from the previous one's dataset, held-out set and committee, continues its generation
    numbering and relabels nothing. Without --run it is submitted to the daemon. Prints the new campaign's PK.
    """
    from aiida.plugins import WorkflowFactory

    from workchains.active_learning.state import campaign_state

    _require_campaign(process)
    if not process.is_terminated and not force:
        echo.echo_critical(
            f'Campaign {process.pk} is still {process.process_state.value}. If its process died (killed or lost), '
            f'pass --force; if it is alive, stop it first: verdi process kill {process.pk}'
        )
    if use_cache and not run_here:
        echo.echo_critical(
            '--use-cache needs --run: daemon workers follow the profile setting '
            '(verdi config set caching.default_enabled True, then verdi daemon restart).'
        )
    try:
        state = campaign_state(process)
        builder = WorkflowFactory('les.active_learning').get_builder_restart(
            process, extra_label_budget=label_budget, extra_generations=max_generations
        )
    except ValueError as exception:
        echo.echo_critical(str(exception))
    parameters = builder.parameters.get_dict()
    echo.echo_report(f'Reused {state.describe()}.')
    echo.echo_report(
        f'New campaign: generations {state.generation} to {parameters["max_generations"] - 1} at most, label budget '
        f'{parameters["label_budget"]} ({state.labels_used} used so far).'
    )
    if dry_run:
        return
    if run_here:
        _run_here(builder, use_cache)
    else:
        _submit(builder)


def _require_campaign(process) -> None:
    """Stop with a one-line message unless ``process`` is an ``les.active_learning`` campaign."""
    from workchains.active_learning.history import is_campaign

    if not is_campaign(process):
        label = process.process_label or type(process).__name__
        echo.echo_critical(
            f'{label}<{process.pk}> is not a campaign (les.active_learning); `aiida-les campaign list` lists them.'
        )


def _run_here(builder, use_cache: bool) -> None:
    """Run the campaign in this interpreter (no daemon needed), printing its PK first; Ctrl-C kills it cleanly."""
    import contextlib
    import signal

    from aiida.common.log import configure_logging
    from aiida.engine import utils
    from aiida.manage import get_manager
    from aiida.manage.caching import enable_caching

    manager = get_manager()
    # Report lines go to the database (and the profile log), as under `verdi run`, whatever configured logging last.
    log_file = manager.get_config().filepaths(manager.get_profile())['profile']['log']
    configure_logging(with_orm=True, daemon_log_file=log_file)
    runner = manager.get_runner()
    with enable_caching() if use_cache else contextlib.nullcontext(), utils.loop_scope(runner.loop):
        process = runner.instantiate_process(builder)
        echo.echo(f'Running campaign {process.node.pk} in this process.')

        def kill(_signal, _frame):
            process.kill(msg_text='Killed because `aiida-les campaign extend --run` was interrupted.')

        previous = {number: signal.signal(number, kill) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            process.execute()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    node = process.node
    if node.is_finished_ok:
        echo.echo_success(f'Campaign {node.pk} finished: {node.outputs.summary["stop_reason"]}.')
    else:
        echo.echo_critical(f'Campaign {node.pk} ended {node.process_state.value}, exit status {node.exit_status}.')


def _submit(builder) -> None:
    """Submit the campaign to the daemon of this profile."""
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage import get_manager

    if get_manager().get_profile().process_control_backend is None:
        echo.echo_critical('This profile has no broker, so nothing can be submitted: use --run.')
    node = submit(builder)
    echo.echo_success(f'Submitted campaign {node.pk} to the daemon.')
    if not get_daemon_client().is_daemon_running:
        echo.echo_warning('The daemon is not running: start it with `verdi daemon start`.')
