"""Trainer: the optimisation loop of one model, with EMA, LR schedule, early stopping, checkpoints and guards.

Determinism: the model is initialised from ``torch.manual_seed(seed)`` and the batch order of epoch ``e`` is the
permutation drawn from ``seed`` and ``e``, so a run resumed from a checkpoint (saved every ``checkpoint_every``
steps, at the end of every epoch and when the walltime runs out) continues bit for bit: same epoch count,
optimiser, scheduler, EMA, accumulated metrics and RNG states.
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from les_model import _keys as K
from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset
from les_model.electrostatics.validation import NonFiniteError
from les_model.io import model_to_dict
from les_model.nn.model import LesModel
from les_model.train.distributed import Communicator, ShardFailure, global_batch_loss, merge_sums
from les_model.train.ema import ExponentialMovingAverage
from les_model.train.initialise import initialise_model
from les_model.train.loss import LossWeights, squared_error_sums, weighted_loss
from les_model.train.metrics import ErrorAccumulator
from les_model.train.offset import refit_reference_energies
from les_model.train.schedule import LearningRateSchedule
from les_model.train.stop import StopRequest

__all__ = [
    'charge_convention',
    'NonFiniteLossError',
    'Trainer',
    'TrainingStopped',
    'WalltimeReached',
    'initialise_model',
    'resolve_device',
    'resolve_dtype',
]


#: An epoch counts as an improvement (best model, early stopping) when it lowers the monitored loss by this fraction.
_MIN_RELATIVE_IMPROVEMENT = 1e-4


class NonFiniteLossError(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


class TrainingStopped(RuntimeError):
    """Training stopped before its end (walltime or a signal); a checkpoint was written before this was raised.

    :ivar reason: ``'walltime'``, ``'SIGTERM'`` or ``'SIGINT'``.
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class WalltimeReached(TrainingStopped):
    """The walltime budget ran out; a checkpoint was written before this was raised."""

    def __init__(self, message: str):
        super().__init__(message, 'walltime')


def resolve_device(name: str) -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without a GPU raises ``ValueError``."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no CUDA device")
    if name not in ('cpu', 'cuda'):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    return torch.device(name)


def resolve_dtype(name: str) -> torch.dtype:
    """``'float32'`` or ``'float64'`` -> the torch dtype."""
    if name not in ('float32', 'float64'):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return getattr(torch, name)


def charge_convention(model: LesModel, train_set: StructureDataset, weights: LossWeights) -> str:
    """What fixes the global sign of the latent charges (:mod:`les_model.nn.charge_sign`).

    :return: ``'none'`` (no latent charges), ``'labels'`` (dipole or Born-charge labels are trained on),
        ``'total_charge'`` (charged training structures: the energy is not even in q) or ``'electronegativity'``
        (the convention applies: the flip is a symmetry of the loss).
    """
    if model.long_range is None:
        return 'none'
    if weights.get(K.DIPOLE, 0.0) > 0 or weights.get(K.BEC, 0.0) > 0:
        return 'labels'
    if any(abs(float(sample[K.TOTAL_CHARGE])) > 1e-8 for sample in train_set.samples):
        return 'total_charge'
    return 'electronegativity'


def _rng_state() -> dict[str, Any]:
    return {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(), 'python': random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])


class Trainer:
    """Train one model.

    :param config: training configuration (optimiser, schedule, weights, checkpoint interval).
    :param model: the model to train (float64 CPU from :func:`initialise_model`; moved to ``device``/``dtype``).
    :param train_set: training structures.
    :param valid_set: validation structures (may be empty: the training loss then drives schedule and stopping).
    :param device: torch device.
    :param dtype: float32 or float64.
    :param seed: seed of the batch order.
    :param checkpoint: write-checkpoint callback, given the trainer state dict; None disables checkpoints.
    :param deadline: ``time.monotonic()`` value by which training must have checkpointed and stopped.
    :param on_epoch: callback ``(history)`` after every epoch (writes metrics.json); :attr:`epoch_seconds` holds
        the wall time of that epoch [s] and :attr:`improved` whether it gave a new best model.
    :param progress: show a tqdm bar on stderr.
    :param stop: a :class:`~les_model.train.stop.StopRequest`; once raised, the trainer checkpoints after the
        current step and raises :class:`TrainingStopped`.
    :param comm: the data-parallel communicator (:mod:`les_model.train.distributed`); ``config.batch_size`` is the
        global batch, split over the ranks. Pass ``checkpoint`` and ``on_epoch`` on rank 0 only.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: LesModel,
        train_set: StructureDataset,
        valid_set: StructureDataset,
        device: torch.device,
        dtype: torch.dtype,
        seed: int,
        checkpoint: Callable[[dict[str, Any]], None] | None = None,
        deadline: float | None = None,
        on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
        progress: bool = False,
        stop: StopRequest | None = None,
        comm: Communicator | None = None,
    ):
        if len(train_set) == 0:
            raise ValueError('the training set is empty')
        self.comm = comm or Communicator()
        if config.batch_size % self.comm.world_size:
            raise ValueError(
                f'batch_size {config.batch_size} (the global batch) is not divisible by the {self.comm.world_size} '
                f'processes; choose a multiple'
            )
        self.config = config
        self.model = model.to(device=device, dtype=dtype).train()
        self.train_set, self.valid_set = train_set, valid_set
        self.device, self.dtype, self.seed = device, dtype, seed
        self.checkpoint_fn, self.deadline, self.on_epoch, self.progress = checkpoint, deadline, on_epoch, progress
        self.stop = stop
        self.weights = LossWeights.from_config(config)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = LearningRateSchedule(
            self.optimizer,
            config.scheduler,
            lr=config.lr,
            min_lr=config.min_lr,
            epochs=config.epochs,
            steps_per_epoch=train_set.n_batches(config.batch_size),
            warmup_epochs=min(config.warmup_epochs, 0.1 * config.epochs),
            patience=config.scheduler_patience,
            factor=config.scheduler_factor,
        )
        self.ema = ExponentialMovingAverage(self.model, config.ema_decay)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.step = 0
        self.accumulator: dict[str, list[float]] = {}
        self._local_errors: dict[str, list[float]] = {}  # this rank's error sums since the last sync (not 'loss')
        self.history: list[dict[str, Any]] = []
        self.best_loss = float('inf')
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self._step_times: list[float] = []
        self.charge_convention = charge_convention(model, train_set, self.weights)
        self._epoch_start = time.monotonic()
        self.epoch_seconds = 0.0
        self.improved = False

    # --- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (model file dict included)."""
        return {
            'model': model_to_dict(self.model),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'ema': self.ema.state_dict(),
            'epoch': self.epoch,
            'batch_in_epoch': self.batch_in_epoch,
            'step': self.step,
            'accumulator': copy.deepcopy(self.accumulator),
            'history': copy.deepcopy(self.history),
            'best_loss': self.best_loss,
            'best_epoch': self.best_epoch,
            'best_state': self.best_state,
            'bad_epochs': self.bad_epochs,
            'stopped_early': self.stopped_early,
            'rng': _rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (the model weights included)."""
        weights = {k: v.to(device=self.device) for k, v in state['model']['state_dict'].items()}
        self.model.load_state_dict({k: v.to(self.dtype) if v.is_floating_point() else v for k, v in weights.items()})
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.ema.load_state_dict(state['ema'])
        for key in ('epoch', 'batch_in_epoch', 'step', 'accumulator', 'history', 'best_loss', 'best_epoch'):
            setattr(self, key, state[key])
        self.best_state = state['best_state']
        self.bad_epochs = state['bad_epochs']
        self.stopped_early = state['stopped_early']
        _set_rng_state(state['rng'])

    def _sync_errors(self) -> None:
        """Add every rank's running error sums into :attr:`accumulator` (collective; no-op for one process)."""
        if self.comm.distributed:
            self.accumulator = merge_sums([self.accumulator, *self.comm.gather(self._local_errors)])
            self._local_errors = {}

    def _save(self) -> None:
        self._sync_errors()  # the checkpoint holds the errors of all ranks: it does not depend on the world size
        if self.checkpoint_fn is not None:
            self.checkpoint_fn(self.state_dict())

    # --- loop ----------------------------------------------------------------------------------------------------
    def _predict(self, batch, create_graph: bool) -> dict[str, torch.Tensor]:
        w = self.weights
        return self.model(
            batch,
            compute_forces=True,
            compute_stress=w.needs_stress and K.STRESS in batch,
            create_graph=create_graph,
            compute_bec=w.needs_bec and K.BEC in batch,
        )

    def _train_step(self, batch) -> tuple[dict[str, torch.Tensor], float]:
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.before_step(self.step)
        try:
            pred = self._predict(batch, create_graph=True)
        except NonFiniteError as exc:  # diverged weights give non-finite charges before the loss is formed
            raise NonFiniteLossError(f'{exc} at epoch {self.epoch}, step {self.step}') from exc
        loss, _ = weighted_loss(pred, batch, self.weights)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f'loss is {loss.item()} at epoch {self.epoch}, step {self.step}')
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not torch.isfinite(norm):
            raise NonFiniteLossError(f'gradient norm is {float(norm)} at epoch {self.epoch}, step {self.step}')
        self.optimizer.step()
        self.ema.update(self.model)
        return pred, float(loss.detach())

    def _train_step_distributed(self, batch) -> tuple[dict[str, torch.Tensor] | None, float]:
        """One step on this rank's shard (``None``: empty) of the global batch; the gradient is the whole batch's."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.before_step(self.step)
        pred, sums, failed = None, {}, ''
        if batch is not None:
            try:
                pred = self._predict(batch, create_graph=True)
                sums = squared_error_sums(pred, batch, self.weights)
            except NonFiniteError as exc:
                failed = str(exc)
        like = torch.zeros((), dtype=self.dtype, device=self.device)
        try:  # a collective: every rank reaches it, also one whose forward failed
            local = global_batch_loss(self.comm, sums, self.weights, failed, like)
        except ShardFailure as exc:
            raise NonFiniteLossError(f'{exc} at epoch {self.epoch}, step {self.step}') from exc
        if local.requires_grad:
            local.backward()
        loss = float(self.comm.sum_gradients(self.model.parameters(), local.detach().reshape(1))[0])
        if not np.isfinite(loss):
            raise NonFiniteLossError(f'loss is {loss} at epoch {self.epoch}, step {self.step}')
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not torch.isfinite(norm):
            raise NonFiniteLossError(f'gradient norm is {float(norm)} at epoch {self.epoch}, step {self.step}')
        self.optimizer.step()
        self.ema.update(self.model)
        return pred, loss

    def _record_step(self, pred, batch, loss: float) -> None:
        """Add a step's errors to the running sums (one process: as before; ranks: local sums + the global loss)."""
        if not self.comm.distributed:
            acc = ErrorAccumulator(self.accumulator)
            acc.update(pred, batch, loss)
            self.accumulator = acc.state
            return
        abs_sum, sq_sum, count = self.accumulator.get('loss', [0.0, 0.0, 0.0])
        self.accumulator['loss'] = [abs_sum + loss, sq_sum, count + 1]  # the global loss: the same on every rank
        if pred is not None:
            acc = ErrorAccumulator(self._local_errors)
            acc.update(pred, batch, loss)
            acc.state.pop('loss')
            self._local_errors = acc.state

    def evaluate(self, dataset: StructureDataset, use_ema: bool = True) -> dict[str, float]:
        """Errors on ``dataset`` (:meth:`ErrorAccumulator.summary`) of the EMA weights or the current ones."""
        acc = ErrorAccumulator()
        every = self.comm.part if self.comm.distributed else None  # whole batches split over the ranks
        with self.ema.applied(self.model) if use_ema else contextlib.nullcontext():
            for batch in dataset.batches(self.config.batch_size, None, self.dtype, self.device, every=every):
                pred = self._predict(batch, create_graph=False)
                loss, _ = weighted_loss(pred, batch, self.weights)
                acc.update(pred, batch, float(loss.detach()))
        if self.comm.distributed:
            return ErrorAccumulator(merge_sums(self.comm.gather(acc.state))).summary()
        return acc.summary()

    def _check_walltime(self) -> None:
        if self.deadline is None:
            return
        recent = self._step_times[-20:]
        margin = 3.0 * (max(recent) if recent else 0.0) + 2.0
        (reached,) = self.comm.any(time.monotonic() + margin > self.deadline)  # one decision for all ranks
        if reached:
            self._save()
            raise WalltimeReached(f'walltime reached at epoch {self.epoch}, step {self.step}; checkpoint written')

    def _orient_charges(self) -> dict[str, Any]:
        """Apply the latent-charge sign convention (EMA weights, up to 64 training structures) when it is free."""
        if self.charge_convention != 'electronegativity':
            return {}
        subset = self.train_set.subset(range(min(64, len(self.train_set))))
        with self.ema.applied(self.model):
            result = self.model.orient_charges(subset.batches(self.config.batch_size, None, self.dtype, self.device))
        if self.comm.distributed:  # rank 0 decides: GPU sums may differ in the last bits between devices
            result = self.comm.gather(result)[0]
            self.model.charge_sign.fill_(result['sign'])
        return {'charge_sign': result['sign'], 'charge_orientation_score': result['score']}

    def _check_stop(self) -> None:
        (stop,) = self.comm.any(bool(self.stop))  # a signal that reached one rank stops all of them
        if stop:
            reason = (self.stop.reason if self.stop else None) or 'SIGTERM'
            self._save()
            raise TrainingStopped(
                f'{reason} received at epoch {self.epoch}, step {self.step}; checkpoint written', reason
            )

    def _end_epoch(self) -> None:
        self._sync_errors()
        orientation = self._orient_charges()
        if self.config.refit_reference_energies and self.config.reference_energies == 'least_squares':
            with self.ema.applied(self.model):  # the weights that are evaluated and saved
                refit_reference_energies(
                    self.model, self.train_set, self.config.batch_size, self.dtype, self.device, self.comm
                )
        # 'ema': the training errors of the weights that are validated and saved, measured after the epoch;
        # 'running': errors accumulated over the epoch's steps while the weights moved (free, but noisy)
        if self.config.train_errors == 'ema':
            train_metrics = self.evaluate(self.train_set)
        else:
            train_metrics = ErrorAccumulator(self.accumulator).summary()
        valid_metrics = self.evaluate(self.valid_set) if len(self.valid_set) else {}
        monitor = valid_metrics.get('loss', train_metrics.get('loss', float('inf')))
        entry = {
            'epoch': self.epoch + 1,
            'step': self.step,
            'lr': self.optimizer.param_groups[0]['lr'],
            'train': train_metrics,
            'valid': valid_metrics,
            **orientation,
        }
        self.scheduler.after_epoch(self.epoch + 1, monitor)
        self.history.append(entry)
        self.improved = monitor < self.best_loss * (1.0 - _MIN_RELATIVE_IMPROVEMENT)
        if self.improved:
            self.best_loss, self.best_epoch, self.bad_epochs = monitor, self.epoch + 1, 0
            with self.ema.applied(self.model):
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        patience = self.config.early_stopping_patience
        if patience and self.bad_epochs >= patience:
            self.stopped_early = True
        self.epoch += 1
        self.batch_in_epoch = 0
        self.accumulator = {}
        now = time.monotonic()
        self.epoch_seconds, self._epoch_start = now - self._epoch_start, now
        if self.on_epoch is not None:
            self.on_epoch(self.history)

    def fit(self) -> str:
        """Train until ``epochs`` (or early stopping); load the best EMA weights into the model.

        Early stopping counts epochs without a relative improvement of 1e-4 of the validation loss (training loss
        without validation data).

        :return: ``'completed'`` or ``'early_stopped'``.
        :raises NonFiniteLossError: on a NaN/inf loss or gradient.
        :raises WalltimeReached: after writing a checkpoint when the deadline approaches.
        :raises TrainingStopped: after writing a checkpoint when :attr:`stop` was raised (SIGTERM, SIGINT).
        """
        from tqdm import tqdm

        config = self.config
        n_batches = self.train_set.n_batches(config.batch_size)
        bar = tqdm(
            total=config.epochs * n_batches,
            initial=self.epoch * n_batches + self.batch_in_epoch,
            disable=not (self.progress and self.comm.is_main),
            desc='train',
            leave=False,
        )
        self._epoch_start = time.monotonic()
        try:
            while self.epoch < config.epochs and not self.stopped_early:
                batches = self.train_set.batches(
                    config.batch_size,
                    shuffle_seed=self.seed * 1_000_003 + self.epoch,
                    dtype=self.dtype,
                    device=self.device,
                    skip=self.batch_in_epoch,
                    shard=self.comm.part if self.comm.distributed else None,
                )
                step = self._train_step_distributed if self.comm.distributed else self._train_step
                for batch in batches:
                    start = time.monotonic()
                    pred, loss = step(batch)
                    self._record_step(pred, batch, loss)
                    self.step += 1
                    self.batch_in_epoch += 1
                    self._step_times.append(time.monotonic() - start)
                    bar.update(1)
                    bar.set_postfix(epoch=self.epoch + 1, loss=f'{loss:.3g}')
                    if self.step % config.checkpoint_every == 0:
                        self._save()
                    self._check_walltime()
                    self._check_stop()
                self._end_epoch()
                self._save()
                self._check_walltime()
        finally:
            bar.close()
        if self.best_state is not None:
            self.model.load_state_dict({k: v.to(self.device) for k, v in self.best_state.items()})
        return 'early_stopped' if self.stopped_early else 'completed'


def checkpoint_writer(path: str | Path, extra: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """Return a callback that saves ``{**extra, 'trainer': state}`` atomically to ``path``."""
    path = Path(path)

    def write(state: dict[str, Any]) -> None:
        tmp = path.with_name(path.name + '.tmp')
        torch.save({**extra, 'trainer': state}, tmp)
        tmp.replace(path)

    return write
