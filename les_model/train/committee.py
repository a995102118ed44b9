"""Training of one model or a committee of K models (seeds ``seed + k``, optional bootstrap of the data).

Files written in ``workdir``: the model file(s) (``model_file`` for K = 1, ``<stem>_<k>.pt`` for K > 1),
``metrics.json`` (rewritten after every epoch), ``train.log`` (one line per epoch, also on stdout),
``checkpoint.pt`` (the member being trained and its trainer state), ``<stem>.partial.pt`` (the best model so far of
the member being trained, rewritten with the checkpoint whenever it improved, removed once the member's final
file is written: what a stopped or killed run leaves to use) and ``learning_curve.png``. :func:`train_committee`
resumes from ``checkpoint.pt`` when asked, and does nothing when that run already finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset, read_frames
from les_model.data.labels import check_label_keys, describe_labels, weights_of
from les_model.io import save_model
from les_model.nn.model import LesModel
from les_model.train.distributed import Communicator
from les_model.train.log import TrainLog, format_epoch_line
from les_model.train.metrics import plot_learning_curve
from les_model.train.stop import StopRequest
from les_model.train.trainer import (
    NonFiniteLossError,
    Trainer,
    TrainingStopped,
    checkpoint_writer,
    initialise_model,
)

__all__ = [
    'CHECKPOINT_FILE',
    'LEARNING_CURVE_FILE',
    'METRICS_FILE',
    'load_data',
    'model_file_names',
    'partial_file_name',
    'train_committee',
]

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


def partial_file_name(name: str) -> str:
    """``model_1.pt`` -> ``model_1.partial.pt``: the best model so far of an unfinished member."""
    return f'{Path(name).stem}.partial.pt'


def load_data(config: TrainConfig) -> tuple[StructureDataset, StructureDataset]:
    """Read the training data and split off (or read) the validation set.

    :raises LabelError: if a label the loss uses (or a renamed key) is in no frame of the training file.
    """
    weights = weights_of(config)
    lenient = [label for label, weight in weights.items() if weight <= 0]
    frames = read_frames(config.train_file)
    check_label_keys(frames, config.keys, weights, config.train_file)
    full = StructureDataset.from_atoms(frames, config.keys, lenient)
    if config.valid_file:
        return full, StructureDataset.from_file(config.valid_file, config.keys, lenient)
    return full.split(config.valid_fraction, config.seed)


def _report_data(config: TrainConfig, train: StructureDataset, valid: StructureDataset, log: TrainLog) -> None:
    """Log what the data holds; refuse a validation set with species the model will not know (before training)."""
    known = set(config.model.species or train.species)
    unknown = sorted(set(valid.species) - known)
    if unknown and not config.init_model:
        raise ValueError(
            f'the validation set has species {unknown} that the training set lacks (it has {sorted(known)}); '
            f'add frames with them to train_file or list them in model.species'
        )
    weights = weights_of(config)
    for line in describe_labels(train.samples, weights, 'training set'):
        log(line)
    if len(valid):
        for line in describe_labels(valid.samples, weights, 'validation set'):
            log(line)
    elif config.valid_file is None and config.valid_fraction > 0:
        log(
            f'warning: valid_fraction {config.valid_fraction:g} of {len(train)} frame(s) leaves no validation frame; '
            f'the schedule, early stopping and the best model follow the training loss, and the final errors are '
            f'training errors'
        )


def _finished(saved: dict[str, Any], config: TrainConfig, workdir: Path) -> bool:
    """Whether the checkpointed run already trained every member to the end of ``config.epochs``."""
    state = saved['trainer']
    done = state['stopped_early'] or state['epoch'] >= config.epochs
    last = saved['member'] == config.committee_size - 1
    return bool(done and last and all((workdir / name).is_file() for name in model_file_names(config)))


def _write_partial(state: dict[str, Any], path: Path, meta: dict[str, Any]) -> None:
    """Save the best weights of a trainer ``state`` as a model file (atomically)."""
    payload = dict(state['model'])
    if state['best_state'] is not None:
        payload['state_dict'] = state['best_state']
    payload['metadata'] = {**meta, 'partial': True, 'best_epoch': state['best_epoch'], 'epoch': state['epoch']}
    tmp = path.with_name(path.name + '.tmp')
    torch.save(payload, tmp)
    tmp.replace(path)


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
    stop: StopRequest | None = None,
    echo: bool = True,
    comm: Communicator | None = None,
) -> dict[str, Any]:
    """Train ``config.committee_size`` models and write their files in ``workdir``.

    :param config: the training configuration (paths relative to the current directory).
    :param workdir: output directory.
    :param resume: continue from ``workdir/checkpoint.pt`` if it exists (otherwise start afresh); a run that already
        finished is left as it is (``metrics['already_finished']`` is then True).
    :param device: torch device (default CPU).
    :param dtype: floating dtype (default from ``config.dtype``).
    :param start_time: ``time.monotonic()`` at program start, for ``max_walltime``.
    :param stop: raised by a signal handler to stop after the current step (see :mod:`les_model.train.stop`).
    :param echo: print the log lines on stdout too (they always go to ``train.log``).
    :param comm: data-parallel communicator (``torchrun``; :mod:`les_model.train.distributed`): every rank trains,
        rank 0 alone writes files and prints; the members are trained one after another by all ranks.
    :return: the metrics dictionary also written to ``metrics.json``.
    :raises NonFiniteLossError, TrainingStopped: propagated from :class:`~les_model.train.trainer.Trainer`
        (metrics.json is written with ``status`` ``'nan'`` / ``'walltime'`` / ``'interrupted'`` first; a stopped run
        leaves its best model so far in :func:`partial_file_name` of the member's file).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = workdir / CHECKPOINT_FILE
    comm = comm or Communicator()
    if comm.is_main:
        log = TrainLog(workdir, echo=echo, append=resume and checkpoint_path.is_file())
    else:
        log = _silent
    device = device or torch.device('cpu')
    dtype = dtype or getattr(torch, config.dtype)
    start_time = time.monotonic() if start_time is None else start_time
    deadline = start_time + config.max_walltime if config.max_walltime > 0 else None
    saved = None
    if resume and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, map_location='cpu', weights_only=False)
        _check_resumable(saved['config'], config)
        if _finished(saved, config, workdir) and (workdir / METRICS_FILE).is_file():
            metrics = json.loads((workdir / METRICS_FILE).read_text(encoding='utf-8'))
            metrics['already_finished'] = True
            epoch = saved['trainer']['epoch']
            further = (
                'it stopped early; start a new run to train further'
                if saved['trainer']['stopped_early']
                else f'raise `epochs` above {epoch} to train further'
            )
            log(
                f'nothing to do: this run already finished ({epoch} epochs, '
                f'{config.committee_size} model(s): {", ".join(model_file_names(config))}); {further}'
            )
            return metrics
    elif resume:
        log(f'no {CHECKPOINT_FILE} in {workdir}: starting afresh')
    train_full, valid_set = load_data(config)
    _report_data(config, train_full, valid_set, log)
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
    if saved:
        metrics['members'] = saved['members_done']

    def write_metrics() -> None:
        if not comm.is_main:
            return
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
            log(f'resuming member {k} at epoch {saved["trainer"]["epoch"]}, step {saved["trainer"]["step"]}')
        else:
            model = initialise_model(config, train_set, seed, log=log if k == 0 else lambda line: None)
        entry: dict[str, Any] = {'member': k, 'seed': seed, 'model_file': names[k], 'status': 'running', 'epochs': []}
        metrics['members'].append(entry)
        partial = workdir / partial_file_name(names[k])
        current: dict[str, Any] = {'trainer': None, 'best_written': None}  # filled below, read by the callbacks

        def on_epoch(history, entry=entry, k=k, current=current):
            entry['epochs'] = history
            write_metrics()
            run = current['trainer']
            log(
                format_epoch_line(history[-1], config.epochs, run.epoch_seconds, k, config.committee_size, run.improved)
            )

        extra = {'member': k, 'config': config.to_dict(), 'members_done': metrics['members'][:-1]}

        def checkpoint(state, write=checkpoint_writer(checkpoint_path, extra), partial=partial, k=k, current=current):
            write(state)
            # the best model so far, next to the checkpoint, so a killed run still leaves a usable model
            if state['best_state'] is not None and state['best_epoch'] != current['best_written']:
                _write_partial(state, partial, {'seed': config.seed + k, 'member': k})
                current['best_written'] = state['best_epoch']

        trainer = Trainer(
            config,
            model,
            train_set,
            valid_set,
            device,
            dtype,
            seed,
            checkpoint=checkpoint if comm.is_main else None,
            deadline=deadline,
            on_epoch=on_epoch,
            progress=config.progress,
            stop=stop,
            comm=comm,
        )
        current['trainer'] = trainer
        if saved and k == saved['member']:
            trainer.load_state_dict(saved['trainer'])
            entry['epochs'] = trainer.history
        try:
            status = trainer.fit()
        except NonFiniteLossError:
            entry['status'] = metrics['status'] = 'nan'
            write_metrics()
            raise
        except TrainingStopped as exc:
            entry['status'] = metrics['status'] = 'walltime' if exc.reason == 'walltime' else 'interrupted'
            entry['epochs'] = trainer.history
            write_metrics()
            _stopped_notice(exc, trainer, partial, config, k, log)
            if comm.is_main:
                plot_learning_curve(metrics['members'], workdir / LEARNING_CURVE_FILE)
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
        if comm.is_main:
            save_model(trainer.model, workdir / names[k], metadata=meta)
            partial.unlink(missing_ok=True)
        write_metrics()
    metrics['status'] = 'completed'
    metrics['final'] = _average_final(metrics['members'])
    write_metrics()
    if comm.is_main:
        plot_learning_curve(metrics['members'], workdir / LEARNING_CURVE_FILE)
    return metrics


def _silent(line: str) -> None:
    """The log of ranks other than 0: they neither print nor write."""


def _stopped_notice(
    exc: TrainingStopped, trainer: Trainer, partial: Path, config: TrainConfig, member: int, log: TrainLog
) -> None:
    what = 'walltime reached' if exc.reason == 'walltime' else f'{exc.reason} received'
    where = f'after {trainer.epoch} of {config.epochs} epochs (step {trainer.step})'
    if trainer.best_state is not None:
        trainer._save()  # the partial model of the latest best, even if the last checkpoint predates it
        best = f'best model so far (epoch {trainer.best_epoch}) in {partial.name}'
    else:
        best = 'no completed epoch yet, so no model file'
    member_text = f' (member {member} of {config.committee_size})' if config.committee_size > 1 else ''
    log(
        f'stopped: {what} {where}{member_text}; {CHECKPOINT_FILE} written; {best}. '
        f'Continue with `les-train <config> --resume` in this directory.'
    )


def _average_final(members: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for split in ('train', 'valid'):
        values: dict[str, list[float]] = {}
        for member in members:
            for key, value in member.get('final', {}).get(split, {}).items():
                values.setdefault(key, []).append(value)
        out[split] = {k: sum(v) / len(v) for k, v in values.items()}
    return out
