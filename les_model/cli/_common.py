"""Shared command-line plumbing: argument parsing, configuration loading and one-line failure messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from les_model.cli.exit_codes import ExitCode
from les_model.config import ConfigError, load_config

__all__ = ['CliFailure', 'base_parser', 'check_files', 'read_config', 'run_main']


class CliFailure(Exception):
    """Stop the program with ``code`` and print ``message`` as one line on stderr."""

    def __init__(self, code: ExitCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = ' '.join(str(message).split())


def base_parser(prog: str, description: str, kind: str) -> argparse.ArgumentParser:
    """Parser with the positional ``config`` and the ``--device`` / ``--dtype`` overrides.

    :param kind: the configuration the program reads (``train``, ``md``, ``eval``); ``--help`` lists its keys.
    """
    from les_model.cli._help import config_epilog

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=config_epilog(kind),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('config', help=f'YAML configuration file (keys listed below; kind `{kind}`)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], help='override the config device')
    parser.add_argument('--dtype', choices=['float32', 'float64'], help='override the config dtype')
    return parser


def read_config(path: str, kind: str, args: argparse.Namespace):
    """Load and validate the configuration, applying ``--device`` / ``--dtype``; raise :class:`CliFailure`."""
    if not Path(path).is_file():
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'configuration file {path} does not exist')
    try:
        config = load_config(path, kind)
    except ConfigError as exc:
        raise CliFailure(ExitCode.INVALID_CONFIG, str(exc)) from exc
    except yaml.YAMLError as exc:
        raise CliFailure(ExitCode.INVALID_CONFIG, f'{path} is not valid YAML: {exc}') from exc
    overrides = {k: getattr(args, k) for k in ('device', 'dtype') if getattr(args, k, None)}
    return config.model_copy(update=overrides) if overrides else config


def check_files(*paths: str | None) -> None:
    """Raise :class:`CliFailure` (INPUT_FILE_ERROR) naming the first missing file."""
    for path in paths:
        if path and not Path(path).is_file():
            raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'input file {path} does not exist')


def run_main(prog: str, body) -> int:
    """Run ``body()`` (returning an :class:`ExitCode`) and turn :class:`CliFailure` into a one-line message."""
    try:
        code = body()
    except CliFailure as failure:
        print(f'{prog}: ERROR {failure.code.name}: {failure.message}', file=sys.stderr)
        return int(failure.code)
    return int(code)
