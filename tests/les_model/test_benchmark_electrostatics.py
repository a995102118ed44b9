"""Smoke test: the electrostatics benchmark runs on tiny sizes and reports every method."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'electrostatics.py'


@pytest.mark.skipif(not SCRIPT.exists(), reason='benchmarks/ not present')
def test_benchmark_runs(capsys):
    spec = importlib.util.spec_from_file_location('bench_electrostatics', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(['--sizes', '24', '64', '--repeats', '1', '--threads', '0', '--clock', 'cpu'])
    assert out['sizes'] == [24, 64]
    assert all(t is not None and t > 0 for times in out['times'].values() for t in times)
    assert 'fitted scaling exponent' in capsys.readouterr().out


@pytest.mark.skipif(not SCRIPT.exists(), reason='benchmarks/ not present')
def test_pme_table_runs(capsys):
    pytest.importorskip('torchpme')
    spec = importlib.util.spec_from_file_location('bench_electrostatics_pme', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(['--pme-table', '--sizes', '64', '--repeats', '1', '--threads', '0', '--clock', 'cpu'])
    assert set(out['times']) == {'les_mesh', 'pme_own', 'pme_torchpme', 'torchpme_les'}
    assert all(t[0] > 0 for t in out['times'].values())
    assert 'torchpme/own' in capsys.readouterr().out
