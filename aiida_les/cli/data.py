"""``aiida-les model|dataset list|show|export``, also reachable as ``verdi data les ...``."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.params import arguments, types
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


_OUTPUT_HELP = 'File to write [default: the file name stored in the node, in the current directory].'


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


def _export(node, output: pathlib.Path | None, force: bool) -> None:
    target = output or pathlib.Path(node.filename)
    if target.is_dir():
        echo.echo_critical(f'{target} is a directory; give a file name with --output.')
    if target.exists() and not force:
        echo.echo_critical(f'{target} exists; pass --force to overwrite it, or another path with --output.')
    try:
        target.write_bytes(node.get_content(mode='rb'))
    except OSError as exception:
        echo.echo_critical(f'Cannot write {target}: {exception.strerror or exception}.')
    echo.echo_success(f'Wrote {type(node).__name__}<{node.pk}> to {target}.')


@model.command('list')
@click.option('-l', '--limit', default=50, show_default=True)
@decorators.with_dbenv()
def model_list(limit):
    """List models, newest first."""
    from aiida_les.data.model import LesModelData

    _list(LesModelData, {'Version': 'les_model_version', 'Species': 'species', 'sha256': 'sha256'}, limit)


@model.command('show')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:les.model',)))
@decorators.with_dbenv()
def model_show(datum):
    """Show a model's attributes and the process that created it."""
    _show(datum)


@model.command('export')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:les.model',)))
@click.option('-o', '--output', type=click.Path(path_type=pathlib.Path), default=None, help=_OUTPUT_HELP)
@click.option('-f', '--force', is_flag=True, help='Overwrite an existing file.')
@decorators.with_dbenv()
def model_export(datum, output, force):
    """Write the model file (a ``les_model`` .pt file: ``les-md``/``les-eval`` and ``LesCalculator`` read it)."""
    _export(datum, output, force)


@dataset.command('list')
@click.option('-l', '--limit', default=50, show_default=True)
@decorators.with_dbenv()
def dataset_list(limit):
    """List datasets, newest first."""
    from aiida_les.data.dataset import LesDatasetData

    columns = {'Structures': 'n_structures', 'Species': 'species', 'Labels': 'labels', 'Theory': 'level_of_theory'}
    _list(LesDatasetData, columns, limit)


@dataset.command('show')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:les.dataset',)))
@decorators.with_dbenv()
def dataset_show(datum):
    """Show a dataset's statistics and the process that created it."""
    _show(datum)


@dataset.command('export')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:les.dataset',)))
@click.option('-o', '--output', type=click.Path(path_type=pathlib.Path), default=None, help=_OUTPUT_HELP)
@click.option('-f', '--force', is_flag=True, help='Overwrite an existing file.')
@decorators.with_dbenv()
def dataset_export(datum, output, force):
    """Write the extxyz file (energies in eV, forces in eV/Å, positions in Å) to disk."""
    _export(datum, output, force)


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
