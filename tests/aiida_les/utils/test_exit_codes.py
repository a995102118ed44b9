"""docs/exit_codes.md is the table generated from the CalcJob specs, so it cannot drift from the code."""

import pathlib

from aiida_les.utils.exit_codes import exit_code_table

DOC = pathlib.Path(__file__).resolve().parents[3] / 'docs' / 'exit_codes.md'


def test_exit_code_page_is_current():
    assert DOC.read_text() == exit_code_table(), 'regenerate: python -m aiida_les.utils.exit_codes > docs/exit_codes.md'


def test_table_lists_batch_failure_code():
    assert '| 470 | `ERROR_SOME_STRUCTURES_FAILED` | les.ase_label |' in exit_code_table()
