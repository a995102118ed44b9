"""Training: bit-for-bit resume (end of epoch and mid-epoch via walltime), NaN guard, committee, warm start, io."""

from __future__ import annotations

import json
import time

import ase.io
import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.config import TrainConfig
from les_model.data.atoms import atoms_to_batch
from les_model.data.synthetic import label_point_charges, random_ionic_structures
from les_model.io import FORMAT_VERSION, IncompatibleModelError, load_model, model_to_dict, save_model
from les_model.testing.models import TINY_MODEL
from les_model.train.committee import train_committee
from les_model.train.trainer import NonFiniteLossError, WalltimeReached


@pytest.fixture(scope='module')
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('data') / 'data.extxyz'
    frames = label_point_charges(random_ionic_structures(6, 8, seed=2), {11: 1.0, 17: -1.0})
    ase.io.write(path, frames)
    return path


def _config(data_file, **options):
    base = {
        'train_file': str(data_file),
        'valid_fraction': 0.34,
        'epochs': 3,
        'batch_size': 2,
        'lr': 0.005,
        'checkpoint_every': 1,
        'progress': False,
        'scheduler': 'plateau',
        'dtype': 'float64',
        'model': TINY_MODEL,
    }
    base.update(options)
    return TrainConfig.from_dict(base)


def _weights(path):
    return torch.load(path, weights_only=True)['state_dict']


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_resume_after_more_epochs_is_bit_for_bit(tmp_path, data_file):
    straight = tmp_path / 'straight'
    train_committee(_config(data_file, epochs=3), straight)
    split = tmp_path / 'split'
    train_committee(_config(data_file, epochs=2), split)
    metrics = train_committee(_config(data_file, epochs=3), split, resume=True)
    assert [e['epoch'] for e in metrics['members'][0]['epochs']] == [1, 2, 3]
    _assert_same_weights(straight / 'model.pt', split / 'model.pt')
    straight_metrics = json.loads((straight / 'metrics.json').read_text())
    assert straight_metrics['members'][0]['epochs'] == metrics['members'][0]['epochs']


def test_walltime_checkpoint_then_resume_mid_epoch_is_bit_for_bit(tmp_path, data_file):
    straight = tmp_path / 'straight'
    train_committee(_config(data_file, epochs=2, ema_decay=0.5), straight)
    interrupted = tmp_path / 'interrupted'
    with pytest.raises(WalltimeReached):
        train_committee(_config(data_file, epochs=2, ema_decay=0.5, max_walltime=1.0), interrupted)
    state = torch.load(interrupted / 'checkpoint.pt', weights_only=False)
    assert state['trainer']['step'] == 1
    assert state['trainer']['batch_in_epoch'] == 1
    assert json.loads((interrupted / 'metrics.json').read_text())['status'] == 'walltime'
    assert not (interrupted / 'model.pt').exists()
    train_committee(_config(data_file, epochs=2, ema_decay=0.5), interrupted, resume=True)
    _assert_same_weights(straight / 'model.pt', interrupted / 'model.pt')


def test_resume_refuses_changed_configuration(tmp_path, data_file):
    train_committee(_config(data_file, epochs=1), tmp_path)
    with pytest.raises(ValueError, match=r"configuration changed in \['lr'\]"):
        train_committee(_config(data_file, epochs=2, lr=0.1), tmp_path, resume=True)


def test_nan_guard(tmp_path, data_file):
    frames = ase.io.read(data_file, ':')
    frames[0].calc.results['energy'] = float('nan')
    bad = tmp_path / 'bad.extxyz'
    ase.io.write(bad, frames)
    with pytest.raises(NonFiniteLossError, match='loss is nan'):
        train_committee(_config(bad, valid_fraction=0.0, batch_size=6), tmp_path)
    assert json.loads((tmp_path / 'metrics.json').read_text())['status'] == 'nan'


def test_committee_members_differ_and_metrics_are_complete(tmp_path, data_file):
    metrics = train_committee(
        _config(data_file, epochs=2, committee_size=2, bootstrap=True, scheduler='cosine', early_stopping_patience=5),
        tmp_path,
    )
    assert metrics['model_files'] == ['model_0.pt', 'model_1.pt']
    w0, w1 = _weights(tmp_path / 'model_0.pt'), _weights(tmp_path / 'model_1.pt')
    assert not torch.equal(w0['host.embedding.weight'], w1['host.embedding.weight'])
    assert (tmp_path / 'learning_curve.png').stat().st_size > 1000
    on_disk = json.loads((tmp_path / 'metrics.json').read_text())
    assert on_disk['status'] == 'completed'
    for split in ('train', 'valid'):
        assert {'energy_per_atom_mae', 'energy_per_atom_rmse', 'forces_mae', 'forces_rmse'} <= set(
            on_disk['final'][split]
        )
    assert on_disk['units']['forces'] == 'meV/Å'
    assert [m['seed'] for m in on_disk['members']] == [0, 1]


def test_early_stopping(tmp_path, data_file):
    metrics = train_committee(_config(data_file, epochs=30, lr=1e-9, early_stopping_patience=2), tmp_path)
    member = metrics['members'][0]
    assert member['status'] == 'early_stopped'
    assert len(member['epochs']) < 30


def test_warm_start_fine_tunes_an_existing_model(tmp_path, data_file):
    train_committee(_config(data_file, epochs=1), tmp_path / 'base')
    base = load_model(tmp_path / 'base' / 'model.pt')
    with pytest.warns(UserWarning, match='the `model` section is ignored'):
        metrics = train_committee(
            _config(data_file, epochs=1, init_model=str(tmp_path / 'base' / 'model.pt'), model={'n_features': 4}),
            tmp_path / 'tuned',
        )
    tuned = load_model(tmp_path / 'tuned' / 'model.pt')
    assert tuned.config == base.config  # architecture comes from the warm-start file
    assert metrics['status'] == 'completed'
    assert not torch.equal(tuned.state_dict()['host.embedding.weight'], base.state_dict()['host.embedding.weight'])


def test_model_file_round_trip_and_version_check(tmp_path, data_file):
    train_committee(_config(data_file, epochs=1, dtype='float32'), tmp_path)
    model = load_model(tmp_path / 'model.pt')
    assert model.e0.dtype == torch.float32
    assert not model.training
    frames = ase.io.read(data_file, ':2')
    e32 = model(atoms_to_batch(frames, dtype=torch.float32))[K.ENERGY].detach().double()
    model64 = load_model(tmp_path / 'model.pt', dtype=torch.float64)
    e64 = model64(atoms_to_batch(frames))[K.ENERGY].detach()
    np.testing.assert_allclose(e32.numpy(), e64.numpy(), rtol=1e-5)
    payload = model_to_dict(model64)
    assert payload['format_version'] == FORMAT_VERSION
    assert payload['species'] == [11, 17]
    payload['format_version'] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / 'future.pt')
    with pytest.raises(IncompatibleModelError, match=f'format version {FORMAT_VERSION + 1} is not supported'):
        load_model(tmp_path / 'future.pt')
    (tmp_path / 'junk.pt').write_text('not a model')
    with pytest.raises(IncompatibleModelError, match='not a readable les_model model file'):
        load_model(tmp_path / 'junk.pt')
    save_model(model64, tmp_path / 'again.pt', metadata={'note': 'x'})
    assert load_model(tmp_path / 'again.pt').metadata == {'note': 'x'}


@pytest.mark.gpu
def test_training_on_cuda(tmp_path, data_file):
    metrics = train_committee(_config(data_file, epochs=1), tmp_path, device=torch.device('cuda'))
    assert metrics['status'] == 'completed'
    model = load_model(tmp_path / 'model.pt', map_location='cuda')
    assert model.e0.device.type == 'cuda'


def test_walltime_margin_uses_step_times(tmp_path, data_file):
    start = time.monotonic()
    metrics = train_committee(_config(data_file, epochs=1, max_walltime=3600.0), tmp_path, start_time=start)
    assert metrics['status'] == 'completed'


def test_training_on_dipoles_and_born_charges_of_molecules(tmp_path):
    """Molecules labelled with the dipole and Born charges of fixed point charges (Z*_i = q_i I)."""
    frames = []
    for atoms in random_ionic_structures(4, 6, density=0.02, seed=9):
        atoms.pbc = False
        atoms.cell = None
        q = np.where(atoms.numbers == 11, 0.8, -0.8)
        atoms.info['dipole'] = (q[:, None] * atoms.positions).sum(0)
        atoms.arrays['bec'] = (q[:, None, None] * np.eye(3)).reshape(-1, 9)
        frames.append(atoms)
    labelled = label_point_charges(frames, {11: 0.8, 17: -0.8})
    for atoms, source in zip(labelled, frames, strict=True):
        atoms.info['dipole'] = source.info['dipole']
        atoms.arrays['bec'] = source.arrays['bec']
    ase.io.write(tmp_path / 'molecules.extxyz', labelled)
    metrics = train_committee(
        _config(tmp_path / 'molecules.extxyz', epochs=2, dipole_weight=1.0, bec_weight=1.0, valid_fraction=0.25),
        tmp_path,
    )
    final = metrics['final']['train']
    assert {'dipole_mae', 'bec_mae', 'forces_mae'} <= set(final)
    assert all(np.isfinite(v) for v in final.values())


def test_periodic_dipole_difference_is_modulo_the_polarization_quantum():
    """A label on another branch (shifted by a lattice vector, e·Å) costs nothing; molecules keep plain differences."""
    from les_model.train.loss import dipole_difference

    cell = torch.tensor([[[4.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.0, 0.5, 6.0]]] * 2, dtype=torch.float64)
    pbc = torch.tensor([[True] * 3, [False] * 3])
    pred = torch.tensor([[0.3, -0.2, 0.1], [0.3, -0.2, 0.1]], dtype=torch.float64)
    shift = cell[0, 1] - 2.0 * cell[0, 2]
    label = pred + torch.stack([shift, shift]) + torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    diff = dipole_difference(pred, label, cell, pbc)
    torch.testing.assert_close(diff[0], torch.tensor([-0.01, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(diff[1], -shift)
