"""Input validation of the electrostatics modules: messages name the expected and the actual value."""

import pytest
import torch

from les_model.electrostatics.coulomb import CoulombEnergy
from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.electrostatics.validation import check_min_distance, validate_inputs
from les_model.testing.structures import batch_from_atoms, random_ionic_system


@pytest.fixture
def data():
    return batch_from_atoms([random_ionic_system(4, seed=70), random_ionic_system(3, seed=71)])


def _call(data, **overrides):
    args = dict(data, **overrides)
    return LatentEwald()(args['positions'], args['charges'], args['cell'], args['pbc'], args['batch'], 2)


@pytest.mark.parametrize(
    ('override', 'message'),
    [
        ({'positions': torch.zeros(7, 2, dtype=torch.float64)}, r'positions must have shape \(N, 3\), got \(7, 2\)'),
        ({'positions': torch.zeros(7, 3, dtype=torch.int64)}, 'positions must have dtype torch.float32 or'),
        (
            {'charges': torch.zeros(7, dtype=torch.float32)},
            'charges must have dtype torch.float64 .* got torch.float32',
        ),
        ({'charges': torch.zeros(6, dtype=torch.float64)}, r'charges must have shape \(7,\), got \(6,\)'),
        ({'cell': torch.zeros(3, 3, 3, dtype=torch.float64)}, r'cell must have shape \(2, 3, 3\), got \(3, 3, 3\)'),
        ({'pbc': torch.ones(2, 3)}, 'pbc must have dtype torch.bool, got torch.float32'),
        ({'batch': torch.tensor([0, 0, 1, 1, 0, 1, 1])}, 'batch must be sorted'),
        ({'batch': torch.zeros(7, dtype=torch.int32)}, 'batch must have dtype torch.int64, got torch.int32'),
        ({'cell': torch.zeros(2, 3, 3, dtype=torch.float64)}, 'cell of periodic structure 0 is singular'),
    ],
)
def test_bad_inputs_raise_clear_errors(data, override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _call(data, **override)


def test_non_finite_values(data):
    positions = data['positions'].clone()
    positions[2, 1] = float('nan')
    with pytest.raises(ValueError, match='positions must be finite everywhere, found 1 non-finite'):
        _call(data, positions=positions)
    charges = data['charges'].clone()
    charges[0] = float('inf')
    with pytest.raises(ValueError, match='charges must be finite'):
        _call(data, charges=charges)


def test_batch_beyond_n_structures(data):
    with pytest.raises(ValueError, match='batch refers to structure 1 but n_structures is 1'):
        validate_inputs(data['positions'], data['cell'][:1], data['pbc'][:1], data['batch'], 1)


def test_wire_and_overlap_rejected(data):
    pbc = torch.tensor([[True, False, False], [True, True, True]])
    with pytest.raises(ValueError, match='wire'):
        _call(data, pbc=pbc)
    with pytest.raises(ValueError, match='wire'):
        CoulombEnergy()(data['positions'], data['charges'], data['cell'], pbc, data['batch'], 2)
    with pytest.raises(ValueError, match='atoms overlap: expected all pair distances >= 0.5 Å, got a pair at 0.1 Å'):
        check_min_distance(torch.tensor([1.0, 0.1]), 0.5)
    positions = data['positions'].clone()
    positions[1] = positions[0] + 1e-4
    with pytest.raises(ValueError, match='atoms overlap'):
        CoulombEnergy()(positions, data['charges'], data['cell'], data['pbc'], data['batch'], 2)
    with pytest.raises(ValueError, match='method must be one of'):
        CoulombEnergy(method='p3m')
    with pytest.raises(ValueError, match='backend must be'):
        LatentEwald(backend='fft')
