"""``aiida-les model|dataset list|show|export``, also reachable as ``verdi data les ...``."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.params import arguments
from aiida.cmdline.utils import decorators, echo

from aiida_les.cli.root import cmd_root


@click.group('les')
def data_les():
    """Inspect and export LES models and datasets."""


@data_les.group('model')
def model():
    """LES model nodes (``les.model``)."""


@data_les.group('dataset')
def dataset():
    """LES dataset nodes (``les.dataset``)."""


def _list(cls, columns: dict[str, str], limit: int) -> None:
    from aiida import orm
    from tabulate import tabulate

    query = orm.QueryBuilder().append(cls, project=['id', 'ctime', *(f'attributes.{key}' for key in columns.values())])
    query.order_by({cls: {'ctime': 'desc'}}).limit(limit)
    rows = [[pk, ctime.strftime('%Y-%m-%d %H:%M'), *rest] for pk, ctime, *rest in query.all()]
    if not rows:
        echo.echo_report(f'No {cls.__name__} nodes in this profile.')
        return
    echo.echo(tabulate(rows, headers=['PK', 'Created', *columns]))


def _export(node, output: pathlib.Path | None) -> None:
    target = output or pathlib.Path(node.filename)
    if target.exists():
        echo.echo_critical(f'{target} exists; pass another path with --output.')
    target.write_bytes(node.get_content(mode='rb'))
    echo.echo_success(f'Wrote node {node.pk} to {target}.')


@model.command('list')
@click.option('-l', '--limit', default=50, show_default=True)
@decorators.with_dbenv()
def model_list(limit):
    """List models, newest first."""
    from aiida_les.data.model import LesModelData

    _list(LesModelData, {'Version': 'les_model_version', 'Species': 'species', 'sha256': 'sha256'}, limit)


@model.command('show')
@arguments.DATA()
@decorators.with_dbenv()
def model_show(data):
    """Show a model's attributes and the process that created it."""
    _show(data)


@model.command('export')
@arguments.DATA()
@click.option('-o', '--output', type=click.Path(path_type=pathlib.Path), default=None)
@decorators.with_dbenv()
def model_export(data, output):
    """Write the model file to disk."""
    _export(data, output)


@dataset.command('list')
@click.option('-l', '--limit', default=50, show_default=True)
@decorators.with_dbenv()
def dataset_list(limit):
    """List datasets, newest first."""
    from aiida_les.data.dataset import LesDatasetData

    columns = {'Structures': 'n_structures', 'Species': 'species', 'Labels': 'labels', 'Theory': 'level_of_theory'}
    _list(LesDatasetData, columns, limit)


@dataset.command('show')
@arguments.DATA()
@decorators.with_dbenv()
def dataset_show(data):
    """Show a dataset's statistics and the process that created it."""
    _show(data)


@dataset.command('export')
@arguments.DATA()
@click.option('-o', '--output', type=click.Path(path_type=pathlib.Path), default=None)
@decorators.with_dbenv()
def dataset_export(data, output):
    """Write the extxyz file to disk."""
    _export(data, output)


def _show(node) -> None:
    echo.echo(f'{type(node).__name__}<{node.pk}> {node.uuid}  file: {node.filename}')
    for key, value in sorted(node.base.attributes.all.items()):
        if key not in ('filename',):
            echo.echo(f'  {key}: {value}')
    creator = node.creator
    if creator is not None:
        echo.echo(f'  created by: {creator.process_label}<{creator.pk}> ({creator.process_state.value})')


cmd_root.add_command(data_les.commands['model'])
cmd_root.add_command(data_les.commands['dataset'])
