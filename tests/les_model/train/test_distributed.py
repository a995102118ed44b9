"""Data-parallel ``les-train`` under ``torchrun`` (gloo, 2 CPU processes) against the single-process run.

Frames of 8 and 16 atoms, 9 training frames and a global batch of 4: the shards of a batch differ in atom count and
the last batch (1 frame) leaves rank 0 an empty shard, so a loss averaged per rank (instead of normalised by the
global counts) or a missed collective would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import torch
import yaml
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from les_model.cli import train
from les_model.cli.exit_codes import ExitCode
from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.testing.models import TINY_MODEL
from les_model.testing.structures import lennard_jones_nacl_frames
from les_model.train.committee import load_data
from les_model.train.distributed import Communicator, merge_sums
from les_model.train.trainer import Trainer, initialise_model

REPO = Path(__file__).resolve().parents[3]
TORCHRUN = Path(sys.executable).parent / 'torchrun'
#: |w_2 - w_1| allowed per weight: float64 rounding (summation order differs), far below what a step moves
TOLERANCE = 1e-10


def _frames():
    frames = []
    for index, atoms in enumerate(lennard_jones_nacl_frames(11, seed=5)):
        if index % 3 == 1:  # a 16-atom cell: shards of one batch differ in size
            atoms = atoms.repeat((2, 1, 1))
            atoms.rattle(0.03, seed=index)
            atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
            atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(atoms)
    return frames


def _config(epochs: int) -> dict:
    return {
        'train_file': '../data.extxyz',
        'valid_fraction': 0.2,  # 9 training frames: batches of 4, 4, 1
        'epochs': epochs,
        'batch_size': 4,
        'progress': False,
        'dtype': 'float64',
        'device': 'cpu',
        'seed': 1,
        'model': TINY_MODEL,
    }


def _write(directory: Path, epochs: int) -> None:
    directory.mkdir(exist_ok=True)
    (directory / 'train.yaml').write_text(yaml.safe_dump(_config(epochs)))


def _weights(path: Path, checkpoint: bool = False) -> dict[str, torch.Tensor]:
    saved = torch.load(path, map_location='cpu', weights_only=False)
    state = saved['trainer']['model']['state_dict'] if checkpoint else saved['state_dict']
    return {k: v for k, v in state.items() if v.is_floating_point()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _train_here(directory: Path, monkeypatch, *args: str) -> None:
    monkeypatch.chdir(directory)
    assert train.main(['train.yaml', *args]) == ExitCode.SUCCESS


@pytest.mark.skipif(not TORCHRUN.is_file(), reason='no torchrun next to the Python interpreter')
def test_two_gloo_processes_train_the_same_weights_as_one(tmp_path, monkeypatch):
    ase.io.write(tmp_path / 'data.extxyz', _frames())
    one, two = tmp_path / 'one', tmp_path / 'two'
    _write(one, 2)
    _write(two, 2)
    _train_here(one, monkeypatch)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(REPO), 'PYTHONUNBUFFERED': '1'}
    env.pop('WORLD_SIZE', None)
    result = subprocess.run(
        [str(TORCHRUN), '--standalone', '--nproc_per_node', '2', '-m', 'les_model.cli.train', 'train.yaml'],
        cwd=two,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # rank 0 alone prints: one line per epoch and one final line
    assert sum(line.startswith('epoch ') for line in lines) == 2, result.stdout
    assert lines.count('LES-TRAIN FINISHED status=completed') == 1, result.stdout

    config = TrainConfig.from_dict({**_config(2), 'train_file': str(tmp_path / 'data.extxyz')})
    start = initialise_model(config, load_data(config)[0], config.seed, log=lambda line: None)
    raw_one, raw_two = _weights(one / 'checkpoint.pt', True), _weights(two / 'checkpoint.pt', True)
    moved = _max_difference(raw_one, {k: v.to(raw_one[k].dtype) for k, v in start.state_dict().items() if k in raw_one})
    difference = _max_difference(raw_one, raw_two)
    best = _max_difference(_weights(one / 'model.pt'), _weights(two / 'model.pt'))
    print(
        f'\nDDP (2 gloo ranks) vs 1 process after 6 steps: max |dw| {difference:.3g} (current weights), '
        f'{best:.3g} (saved EMA model); weights moved up to {moved:.3g} from a fresh model'
    )
    assert difference < TOLERANCE
    assert best < TOLERANCE
    assert moved > 1e4 * TOLERANCE  # the comparison is not one of untrained weights

    # the 2-process checkpoint continues in one process as the 1-process run does: no world-size state in it
    _write(one, 3)
    _write(two, 3)
    _train_here(one, monkeypatch, '--resume')
    _train_here(two, monkeypatch, '--resume')
    resumed = _max_difference(_weights(one / 'model.pt'), _weights(two / 'model.pt'))
    print(f'resumed with 1 process for a third epoch: max |dw| {resumed:.3g}')
    assert resumed < TOLERANCE


def test_shards_cover_every_global_batch_in_order():
    data = StructureDataset.from_atoms(lennard_jones_nacl_frames(7))
    single = [b['positions'] for b in data.batches(4, shuffle_seed=3)]
    parts = [list(data.batches(4, shuffle_seed=3, shard=(rank, 2))) for rank in range(2)]
    assert [b is None for b in parts[0]] == [False, False]  # batches of 4 and 3: shards of 2+2 and 1+2
    for index, whole in enumerate(single):
        pieces = [p[index]['positions'] for p in parts if p[index] is not None]
        assert torch.equal(torch.cat(pieces), whole)
    strided = [list(data.batches(2, every=(rank, 3))) for rank in range(3)]
    assert [len(s) for s in strided] == [2, 1, 1]  # 4 batches of 2: 0, 3 | 1 | 2


def test_global_batch_must_divide_over_the_ranks():
    data = StructureDataset.from_atoms(lennard_jones_nacl_frames(4))
    config = TrainConfig.from_dict({**_config(1), 'train_file': 'in-memory', 'batch_size': 3})
    model = initialise_model(config, data, 0, log=lambda line: None)
    with pytest.raises(ValueError, match='batch_size 3 .* not divisible by the 2 processes'):
        Trainer(
            config, model, data, StructureDataset([]), torch.device('cpu'), torch.float64, 0, comm=Communicator(0, 2)
        )


def test_merged_error_sums_are_element_wise():
    assert merge_sums([{'forces': [1.0, 2.0, 3.0]}, {'forces': [1.0, 1.0, 1.0], 'loss': [5.0, 0.0, 1.0]}]) == {
        'forces': [2.0, 3.0, 4.0],
        'loss': [5.0, 0.0, 1.0],
    }


class _TwoRanks(Communicator):
    """Rank 0 of two, the other rank's all_reduce contribution given: ``global_batch_loss`` without processes."""

    def __init__(self, other: torch.Tensor):
        super().__init__(0, 2)
        self.other = other

    def sum_(self, tensor):
        return tensor.add_(self.other)


def test_shard_losses_sum_to_the_loss_of_the_whole_batch():
    """``sum_k w_k S_k / N_k`` with global counts, summed over uneven shards, is ``weighted_loss`` of the batch."""
    from les_model import _keys as K
    from les_model.train.distributed import global_batch_loss
    from les_model.train.loss import LossWeights, squared_error_sums, weighted_loss

    frames = _frames()[:3]  # 8, 16 and 8 atoms: shards of 1 and 2 frames, 8 and 24 atoms
    data = StructureDataset.from_atoms(frames)
    weights = LossWeights({K.ENERGY: 1.0, K.FORCES: 10.0})

    def predict(batch):  # a fixed wrong "model": errors in energy and forces
        return {K.ENERGY: 1.1 * batch[K.ENERGY] + 0.01, K.FORCES: 0.9 * batch[K.FORCES] + 0.001}

    (whole,) = data.batches(3)
    expected, _ = weighted_loss(predict(whole), whole, weights)
    shards = [next(data.batches(3, shard=(rank, 2))) for rank in range(2)]
    sums = [squared_error_sums(predict(shard), shard, weights) for shard in shards]
    counts = [torch.tensor([float(s[K.ENERGY][1]), float(s[K.FORCES][1]), 0.0], dtype=torch.float64) for s in sums]
    like = torch.zeros((), dtype=torch.float64)
    parts = [global_batch_loss(_TwoRanks(counts[1 - r]), sums[r], weights, '', like) for r in range(2)]
    assert [len(shard[K.N_ATOMS]) for shard in shards] == [1, 2]
    assert float(parts[0] + parts[1]) == pytest.approx(float(expected), rel=1e-14)
    # the per-shard mean that a naive average of rank losses would use is not the batch loss here
    naive = sum(weighted_loss(predict(shard), shard, weights)[0] for shard in shards) / 2
    assert abs(float(naive) - float(expected)) > 1e-3 * float(expected)
