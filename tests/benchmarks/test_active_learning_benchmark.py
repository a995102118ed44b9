"""Smoke test of benchmarks/active_learning.py: command line and pure helpers (no AiiDA profile, no CP2K)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'active_learning.py'


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_active_learning', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_and_arguments(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(['--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ('--label-budget', '--generations', '--seeds', '--output', '--pool-test'):
        assert option in out
    args = bench.build_parser().parse_args(['--label-budget', '30', '--generations', '2', '--output', 'r.json'])
    assert (args.label_budget, args.generations, args.seeds, str(args.output)) == (30, 2, 2, 'r.json')
    defaults = bench.build_parser().parse_args([])
    assert defaults.label_budget is None
    assert defaults.generations is None
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(['--seeds', 'two'])


def test_union_length_and_overhead(bench):
    assert bench.union_length([]) == 0.0
    assert bench.union_length([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == pytest.approx(4.0)
    assert bench.union_length([(0.0, 10.0), (2.0, 3.0)]) == pytest.approx(10.0)  # nested counted once
    assert bench.union_length([(4.0, 5.0), (0.0, 1.0), (1.0, 2.0)]) == pytest.approx(3.0)  # unsorted, touching
    assert bench.orchestration_overhead([(0.0, 2.0), (1.0, 3.0)], 4.0) == pytest.approx(0.25)
    with pytest.raises(ValueError, match='positive'):
        bench.orchestration_overhead([(0.0, 1.0)], 0.0)


def test_pick_random(bench):
    picks = bench.pick_random(20, 8, seed=3, exclude=[0, 1, 2])
    assert len(picks) == len(set(picks)) == 8
    assert not {0, 1, 2} & set(picks)
    assert all(0 <= i < 20 for i in picks)
    assert picks == bench.pick_random(20, 8, seed=3, exclude=[2, 1, 0])  # seeded
    assert picks != bench.pick_random(20, 8, seed=4, exclude=[0, 1, 2])
    assert bench.pick_random(20, 4, seed=3, exclude=[0, 1, 2]) == picks[:4]  # nested draws
    with pytest.raises(ValueError, match='cannot pick'):
        bench.pick_random(5, 4, seed=0, exclude=[0, 1])


def test_matching_and_clean_frames(bench):
    rng = np.random.default_rng(0)
    pool = [
        Atoms('OH2', positions=rng.normal(size=(3, 3)), cell=[5, 5, 5], pbc=True, info={'max_force_std': 0.2})
        for _ in range(4)
    ]
    shifted = pool[2].copy()
    shifted.positions += 5e-6  # an extxyz round trip
    moved = pool[1].copy()
    moved.positions[0, 0] += 0.1
    assert bench.matching_indices(pool, [shifted, moved, pool[0]]) == [2, -1, 0]
    clean = bench.clean_frame(pool[3], md_pk=7, md_frame=1)
    assert 'max_force_std' not in clean.info
    assert clean.info['md_pk'] == 7
    np.testing.assert_allclose(clean.positions, pool[3].positions)


def test_ratios(bench):
    errors = {
        'al': {'forces': 100.0, 'energy': 2.0},
        'random_n': {'forces': 150.0, 'energy': 3.0},
        'random_2n': {'forces': 90.0, 'energy': 2.0},
    }
    out = bench.ratios(errors)
    assert out['random_n/al_forces'] == pytest.approx(1.5)
    assert out['random_2n/al_forces'] == pytest.approx(0.9)
    assert out['random_2n/al_energy'] == pytest.approx(1.0)


def test_training_config_drops_files(bench):
    campaign = {'train_file': 'train.extxyz', 'valid_file': 'v.extxyz', 'epochs': 60, 'seed': 0, 'progress': True}
    config = bench.training_config(campaign, epochs=None)
    assert 'valid_file' not in config
    assert config['train_file'] == 'in-memory'
    assert (config['epochs'], config['device'], config['progress']) == (60, 'cpu', False)
    assert bench.training_config(campaign, epochs=5)['epochs'] == 5


def test_train_arms_tiny(bench):
    """Three sets, two seeds, one epoch of a tiny model on synthetic labels: sizes, means over seeds, determinism."""
    from les_model.data.synthetic import label_point_charges, random_ionic_structures

    frames = label_point_charges(random_ionic_structures(9, 8, seed=1), {11: 1.0, 17: -1.0})
    campaign = {
        'seed': 3,
        'epochs': 1,
        'batch_size': 2,
        'dtype': 'float64',
        'model': {'cutoff': 4.0, 'n_features': 4, 'n_radial': 4, 'n_interactions': 1, 'readout_hidden': 4},
    }
    config = bench.training_config(campaign, epochs=None)
    sets = {'al': frames[2:3], 'random_n': frames[3:4], 'random_2n': frames[3:5]}
    tests = {'held-out': frames[7:]}
    arms = bench.train_arms(config, frames[:2], sets, tests, seeds=[3, 4], jobs=1)
    assert [arms[a]['n_train'] for a in bench.ARMS] == [3, 3, 4]
    assert [arms[a]['n_labels'] for a in bench.ARMS] == [1, 1, 2]
    for arm in arms.values():
        assert [run['seed'] for run in arm['runs']] == [3, 4]
        forces = [run['held-out']['forces'] for run in arm['runs']]
        assert all(np.isfinite(forces))
        assert forces[0] != forces[1]
        assert arm['mean']['held-out']['forces'] == pytest.approx(np.mean(forces))
    again = bench.train_arms(config, frames[:2], {'al': sets['al']}, tests, seeds=[3], jobs=1)
    assert again['al']['runs'][0]['held-out'] == arms['al']['runs'][0]['held-out']
