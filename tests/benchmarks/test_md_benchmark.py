"""Smoke test of benchmarks/md.py: eager and scripted MD on a small box, same potential, positive throughputs."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip('metatomic_ase')

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'md.py'


def _module():
    spec = importlib.util.spec_from_file_location('bench_md', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_md_benchmark_runs_both_routes_on_the_same_potential(capsys):
    module = _module()
    argv = ['--sizes', '24', '--features', '8', '--interactions', '1', '--repeats', '1', '--rounds', '1', '--no-memory']
    rows = module.main(argv)
    assert rows[24]['dE'] < 1e-9
    assert rows[24]['eager'] > 0
    assert rows[24]['scripted'] > 0
    assert rows[24]['ts-native'] > 0
    assert 'scripted steps/s' in capsys.readouterr().out


def test_memory_probe_in_a_fresh_process():
    """The memory column: a 600-atom force call in a fresh process grows the peak RSS beyond its 30-atom warm-up."""
    module = _module()
    args = module.main.__globals__['argparse'].Namespace(threads=1, features=16, interactions=1, cutoff=5.0)
    args.dtype = 'float64'
    kb_per_atom = module.memory_per_atom('eager', 600, args)
    assert 0.0 < kb_per_atom < 1e4
