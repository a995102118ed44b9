"""Smoke test of benchmarks/md.py: eager and scripted MD on a small box, same potential, positive throughputs."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip('metatomic_ase')

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'md.py'


def test_md_benchmark_runs_both_routes_on_the_same_potential(capsys):
    spec = importlib.util.spec_from_file_location('bench_md', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ['--sizes', '24', '--features', '8', '--interactions', '1', '--repeats', '1', '--rounds', '1']
    rows = module.main(argv)
    assert rows[24]['dE'] < 1e-9
    assert rows[24]['eager'] > 0
    assert rows[24]['scripted'] > 0
    assert rows[24]['ts-native'] > 0
    assert 'scripted steps/s' in capsys.readouterr().out
