"""Training of one model or a committee of K models (seeds ``seed + k``, optional bootstrap of the data).

Files written in ``workdir``: the model file(s) (``model_file`` for K = 1, ``<stem>_<k>.pt`` for K > 1),
``metrics.json`` (rewritten after every epoch), ``checkpoint.pt`` (the member being trained and its trainer
state) and ``learning_curve.png``. :func:`train_committee` resumes from ``checkpoint.pt`` when asked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.io import save_model
from les_model.nn.model import LesModel
from les_model.train.metrics import plot_learning_curve
from les_model.train.trainer import (
    NonFiniteLossError,
    Trainer,
    WalltimeReached,
    checkpoint_writer,
    initialise_model,
)

__all__ = ['CHECKPOINT_FILE', 'METRICS_FILE', 'LEARNING_CURVE_FILE', 'model_file_names', 'train_committee', 'load_data']

CHECKPOINT_FILE = 'checkpoint.pt'
METRICS_FILE = 'metrics.json'
LEARNING_CURVE_FILE = 'learning_curve.png'

#: Keys of TrainConfig that may change between a run and its resumption.
_RESUMABLE_CHANGES = {'epochs', 'max_walltime', 'device', 'progress', 'checkpoint_every', 'early_stopping_patience'}

UNITS = {
    'energy_per_atom': 'meV/atom',
    'forces': 'meV/Å',
    'stress': 'meV/Å^3',
    'dipole': 'me Å',
    'bec': 'me',
    'loss': 'weighted sum of MSE in eV, Å, e units',
}


def model_file_names(config: TrainConfig) -> list[str]:
    """Model file names: ``[model_file]`` for one model, ``<stem>_0.pt ... <stem>_{K-1}.pt`` for a committee."""
    if config.committee_size == 1:
        return [config.model_file]
    stem = Path(config.model_file).stem
    return [f'{stem}_{k}.pt' for k in range(config.committee_size)]


def load_data(config: TrainConfig) -> tuple[StructureDataset, StructureDataset]:
    """Read the training data and split off (or read) the validation set."""
    full = StructureDataset.from_file(config.train_file, config.keys)
    if config.valid_file:
        return full, StructureDataset.from_file(config.valid_file, config.keys)
    return full.split(config.valid_fraction, config.seed)


def _check_resumable(saved: dict[str, Any], config: TrainConfig) -> None:
    current = config.to_dict()
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and current[k] != saved.get(k))
    if changed:
        raise ValueError(
            f'cannot resume: the configuration changed in {changed} (only {sorted(_RESUMABLE_CHANGES)} may)'
        )


def train_committee(
    config: TrainConfig,
    workdir: str | Path = '.',
    resume: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    start_time: float | None = None,
) -> dict[str, Any]:
    """Train ``config.committee_size`` models and write their files in ``workdir``.

    :param config: the training configuration (paths relative to the current directory).
    :param workdir: output directory.
    :param resume: continue from ``workdir/checkpoint.pt`` if it exists (otherwise start afresh).
    :param device: torch device (default CPU).
    :param dtype: floating dtype (default from ``config.dtype``).
    :param start_time: ``time.monotonic()`` at program start, for ``max_walltime``.
    :return: the metrics dictionary also written to ``metrics.json``.
    :raises NonFiniteLossError, WalltimeReached: propagated from :class:`~les_model.train.trainer.Trainer`
        (metrics.json is written with ``status`` ``'nan'`` / ``'walltime'`` first).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = device or torch.device('cpu')
    dtype = dtype or getattr(torch, config.dtype)
    start_time = time.monotonic() if start_time is None else start_time
    deadline = start_time + config.max_walltime if config.max_walltime > 0 else None
    train_full, valid_set = load_data(config)
    names = model_file_names(config)
    metrics: dict[str, Any] = {
        'status': 'running',
        'committee_size': config.committee_size,
        'model_files': names,
        'n_train': len(train_full),
        'n_valid': len(valid_set),
        'units': UNITS,
        'members': [],
        'final': {},
    }
    checkpoint_path = workdir / CHECKPOINT_FILE
    saved = None
    if resume and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, map_location='cpu', weights_only=False)
        _check_resumable(saved['config'], config)
        metrics['members'] = saved['members_done']

    def write_metrics() -> None:
        (workdir / METRICS_FILE).write_text(json.dumps(metrics, indent=1), encoding='utf-8')

    first = saved['member'] if saved else 0
    for k in range(first, config.committee_size):
        seed = config.seed + k
        train_set = train_full.bootstrap(seed) if config.bootstrap else train_full
        if saved and k == saved['member']:
            payload = saved['trainer']['model']
            model = LesModel(
                config.model.__class__.from_dict(payload['model_config']),
                payload['species'],
                payload['reference_energies'],
            ).double()
        else:
            model = initialise_model(config, train_set, seed)
        entry: dict[str, Any] = {'member': k, 'seed': seed, 'model_file': names[k], 'status': 'running', 'epochs': []}
        metrics['members'].append(entry)

        def on_epoch(history, entry=entry):
            entry['epochs'] = history
            write_metrics()

        extra = {'member': k, 'config': config.to_dict(), 'members_done': metrics['members'][:-1]}
        trainer = Trainer(
            config,
            model,
            train_set,
            valid_set,
            device,
            dtype,
            seed,
            checkpoint=checkpoint_writer(checkpoint_path, extra),
            deadline=deadline,
            on_epoch=on_epoch,
            progress=config.progress,
        )
        if saved and k == saved['member']:
            trainer.load_state_dict(saved['trainer'])
            entry['epochs'] = trainer.history
        try:
            status = trainer.fit()
        except NonFiniteLossError:
            entry['status'] = metrics['status'] = 'nan'
            write_metrics()
            raise
        except WalltimeReached:
            entry['status'] = metrics['status'] = 'walltime'
            entry['epochs'] = trainer.history
            write_metrics()
            raise
        entry['status'] = status
        entry['best_epoch'] = trainer.best_epoch
        entry['final'] = {
            'train': trainer.evaluate(train_full, use_ema=False),
            'valid': trainer.evaluate(valid_set, use_ema=False) if len(valid_set) else {},
        }
        meta = {
            'seed': seed,
            'member': k,
            'best_epoch': trainer.best_epoch,
            'final': entry['final'],
            'charge_sign_convention': trainer.charge_convention,
        }
        entry['charge_sign_convention'] = trainer.charge_convention
        save_model(trainer.model, workdir / names[k], metadata=meta)
        write_metrics()
    metrics['status'] = 'completed'
    metrics['final'] = _average_final(metrics['members'])
    write_metrics()
    plot_learning_curve(metrics['members'], workdir / LEARNING_CURVE_FILE)
    return metrics


def _average_final(members: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for split in ('train', 'valid'):
        values: dict[str, list[float]] = {}
        for member in members:
            for key, value in member.get('final', {}).get(split, {}).items():
                values.setdefault(key, []).append(value)
        out[split] = {k: sum(v) / len(v) for k, v in values.items()}
    return out
