"""benchmarks/model_accuracy.py --report: one table from the results of seeds run as separate processes."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'model_accuracy.py'


def _run(seed: int, force: float, seconds: float) -> dict:
    return {
        'E': 4.0 + seed,
        'F': force,
        'params': 1000,
        's_per_epoch': seconds,
        'wall_s_per_epoch': seconds,
        'seed': seed,
    }


def test_report_merges_seed_runs(tmp_path):
    for seed, (les, mace) in enumerate([(100.0, 150.0), (120.0, 170.0)]):
        workdir = tmp_path / f'seed_{seed}'
        workdir.mkdir()
        results = {'les_mpnn': [_run(seed, les, 10.0)], 'mace': [_run(seed, mace, 40.0)]}
        (workdir / 'results.json').write_text(json.dumps(results))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--report', str(tmp_path / 'seed_0'), str(tmp_path / 'seed_1')],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith(('les_mpnn', 'mace'))}
    assert 'seeds [0, 1]' in result.stdout
    assert '110.0 ± 10.0' in lines['les_mpnn']  # mean and half the range of the force RMSE over the two seeds
    assert 'F 0.69, time 0.25' in lines['les_mpnn']  # 110 / 160 and 10 / 40 against the peer
