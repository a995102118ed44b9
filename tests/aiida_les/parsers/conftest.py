"""Fixtures for the parser tests: parse a recorded output folder of a ``les-*`` program through its parser."""

import pathlib

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent / 'fixtures'


@pytest.fixture
def parse_fixture(generate_calc_job_node):
    """Return a function ``(entry_point, case, ...) -> (results, calcfunction node)``.

    The CalcJobNode gets ``fixtures/<calc>/<case>`` as its ``retrieved`` folder (``<calc>`` is the entry point name
    without ``les.``), and the parser of ``entry_point`` runs on it through ``parse_from_node``.
    """

    def factory(
        entry_point: str,
        case: str,
        temporary_folder: pathlib.Path | None = None,
        scheduler_exit_status: int | None = None,
    ):
        from aiida.plugins import ParserFactory

        folder = FIXTURES / entry_point.split('.', 1)[1] / case
        assert folder.is_dir(), f'no recorded folder {folder}'
        node = generate_calc_job_node(entry_point, folder)
        if scheduler_exit_status is not None:  # what the scheduler output parser sets before the parser runs
            node.set_exit_status(scheduler_exit_status)
        parser = ParserFactory(entry_point)
        kwargs = {'retrieved_temporary_folder': str(temporary_folder)} if temporary_folder else {}
        return parser.parse_from_node(node, store_provenance=False, **kwargs)

    return factory


@pytest.fixture
def rounded():
    """Return a function rounding every float of a nested structure to 6 significant digits (stable regressions)."""

    def round_all(value):
        if isinstance(value, float):
            return float(f'{value:.6g}')
        if isinstance(value, dict):
            return {key: round_all(sub) for key, sub in value.items()}
        if isinstance(value, list | tuple):
            return [round_all(sub) for sub in value]
        return value

    return round_all
