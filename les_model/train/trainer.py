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
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from les_model import _keys as K
from les_model.config import TrainConfig
from les_model.data.dataset import StructureDataset, fit_reference_energies
from les_model.data.neighborlist import neighbor_list
from les_model.io import load_model, model_to_dict
from les_model.nn.model import LesModel
from les_model.nn.validation import NonFiniteError
from les_model.train.ema import ExponentialMovingAverage
from les_model.train.loss import LossWeights, weighted_loss
from les_model.train.metrics import ErrorAccumulator

__all__ = [
    'charge_convention',
    'NonFiniteLossError',
    'Trainer',
    'WalltimeReached',
    'initialise_model',
    'resolve_device',
    'resolve_dtype',
]


#: An epoch counts as an improvement (best model, early stopping) when it lowers the monitored loss by this fraction.
_MIN_RELATIVE_IMPROVEMENT = 1e-4


class NonFiniteLossError(RuntimeError):
    """The loss or a gradient became NaN or infinite."""


class WalltimeReached(RuntimeError):
    """The walltime budget ran out; a checkpoint was written before this was raised."""


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


def _data_statistics(model: LesModel, dataset: StructureDataset, max_structures: int = 64) -> tuple[float, float]:
    """(energy scale [eV], mean number of neighbours) from up to ``max_structures`` training structures."""
    samples = dataset.samples[:max_structures]
    forces = [s[K.FORCES] for s in samples if K.FORCES in s]
    e0 = model.reference_energies()
    residuals = [
        (float(s[K.ENERGY]) - sum(e0[int(z)] for z in s[K.ATOMIC_NUMBERS])) / len(s[K.ATOMIC_NUMBERS])
        for s in samples
        if K.ENERGY in s
    ]
    if forces:
        scale = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    elif len(residuals) > 1:
        scale = float(np.std(residuals))
    else:
        scale = 1.0
    scale = scale if np.isfinite(scale) and scale > 1e-6 else 1.0
    neighbours = []
    for s in samples:
        pos = torch.as_tensor(s[K.POSITIONS])
        nl = neighbor_list(
            pos,
            torch.as_tensor(s[K.CELL])[None],
            torch.as_tensor(s[K.PBC])[None],
            torch.zeros(len(pos), dtype=torch.int64),
            model.cutoff,
        )
        neighbours.append(nl.edge_index.shape[1] / len(pos))
    return scale, max(float(np.mean(neighbours)), 1.0)


def initialise_model(config: TrainConfig, train_set: StructureDataset, seed: int) -> LesModel:
    """A fresh model (seeded) with E0 and scales from ``train_set``, or the warm-start model of ``init_model``.

    The model is returned in float64 on the CPU; the trainer casts it.
    """
    if config.init_model:
        model = load_model(config.init_model, map_location='cpu', dtype=torch.float64)
        if model.config != config.model:
            warnings.warn(
                f'init_model {config.init_model}: its architecture is used; the `model` section is ignored',
                stacklevel=2,
            )
        missing = sorted(set(train_set.species) - set(model.species))
        if missing:
            raise ValueError(f'init_model {config.init_model} lacks species {missing} present in the training data')
        return model.train()
    species = config.model.species or train_set.species
    missing = sorted(set(train_set.species) - set(species))
    if missing:
        raise ValueError(f'model.species {list(species)} lacks species {missing} present in the training data')
    if config.reference_energies == 'least_squares':
        e0 = fit_reference_energies(train_set, species)
    else:
        e0 = dict.fromkeys(species, 0.0)
    torch.manual_seed(seed)
    model = LesModel(config.model, species, e0).double()
    scale, neighbours = _data_statistics(model, train_set)
    model.energy_scale.fill_(scale)
    if hasattr(model.host, 'inv_neighbors'):
        model.host.inv_neighbors.fill_(1.0 / neighbours)
    return model


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
    :param on_epoch: callback ``(history)`` after every epoch (writes metrics.json).
    :param progress: show a tqdm bar on stderr.
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
    ):
        if len(train_set) == 0:
            raise ValueError('the training set is empty')
        self.config = config
        self.model = model.to(device=device, dtype=dtype).train()
        self.train_set, self.valid_set = train_set, valid_set
        self.device, self.dtype, self.seed = device, dtype, seed
        self.checkpoint_fn, self.deadline, self.on_epoch, self.progress = checkpoint, deadline, on_epoch, progress
        self.weights = LossWeights.from_config(config)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if config.scheduler == 'plateau':
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=config.scheduler_factor, patience=config.scheduler_patience, min_lr=config.min_lr
            )
        elif config.scheduler == 'cosine':
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=config.epochs, eta_min=config.min_lr
            )
        else:
            self.scheduler = None
        self.ema = ExponentialMovingAverage(self.model, config.ema_decay)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.step = 0
        self.accumulator: dict[str, list[float]] = {}
        self.history: list[dict[str, Any]] = []
        self.best_loss = float('inf')
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self._step_times: list[float] = []
        self.charge_convention = charge_convention(model, train_set, self.weights)

    # --- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (model file dict included)."""
        return {
            'model': model_to_dict(self.model),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict() if self.scheduler is not None else None,
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
        if self.scheduler is not None and state['scheduler'] is not None:
            self.scheduler.load_state_dict(state['scheduler'])
        self.ema.load_state_dict(state['ema'])
        for key in ('epoch', 'batch_in_epoch', 'step', 'accumulator', 'history', 'best_loss', 'best_epoch'):
            setattr(self, key, state[key])
        self.best_state = state['best_state']
        self.bad_epochs = state['bad_epochs']
        self.stopped_early = state['stopped_early']
        _set_rng_state(state['rng'])

    def _save(self) -> None:
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

    def evaluate(self, dataset: StructureDataset, use_ema: bool = True) -> dict[str, float]:
        """Errors on ``dataset`` (:meth:`ErrorAccumulator.summary`) of the EMA weights or the current ones."""
        acc = ErrorAccumulator()
        with self.ema.applied(self.model) if use_ema else contextlib.nullcontext():
            for batch in dataset.batches(self.config.batch_size, None, self.dtype, self.device):
                pred = self._predict(batch, create_graph=False)
                loss, _ = weighted_loss(pred, batch, self.weights)
                acc.update(pred, batch, float(loss.detach()))
        return acc.summary()

    def _check_walltime(self) -> None:
        if self.deadline is None:
            return
        recent = self._step_times[-20:]
        margin = 3.0 * (max(recent) if recent else 0.0) + 2.0
        if time.monotonic() + margin > self.deadline:
            self._save()
            raise WalltimeReached(f'walltime reached at epoch {self.epoch}, step {self.step}; checkpoint written')

    def _orient_charges(self) -> dict[str, Any]:
        """Apply the latent-charge sign convention (EMA weights, up to 64 training structures) when it is free."""
        if self.charge_convention != 'electronegativity':
            return {}
        subset = self.train_set.subset(range(min(64, len(self.train_set))))
        with self.ema.applied(self.model):
            result = self.model.orient_charges(subset.batches(self.config.batch_size, None, self.dtype, self.device))
        return {'charge_sign': result['sign'], 'charge_orientation_score': result['score']}

    def _end_epoch(self) -> None:
        orientation = self._orient_charges()
        train_metrics = ErrorAccumulator(self.accumulator).summary()
        valid_metrics = self.evaluate(self.valid_set) if len(self.valid_set) else {}
        monitor = valid_metrics.get('loss', train_metrics.get('loss', float('inf')))
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitor)
        elif self.scheduler is not None:
            self.scheduler.step()
        entry = {
            'epoch': self.epoch + 1,
            'step': self.step,
            'lr': self.optimizer.param_groups[0]['lr'],
            'train': train_metrics,
            'valid': valid_metrics,
            **orientation,
        }
        self.history.append(entry)
        if monitor < self.best_loss * (1.0 - _MIN_RELATIVE_IMPROVEMENT):
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
        if self.on_epoch is not None:
            self.on_epoch(self.history)

    def fit(self) -> str:
        """Train until ``epochs`` (or early stopping); load the best EMA weights into the model.

        Early stopping counts epochs without a relative improvement of 1e-4 of the validation loss (training loss
        without validation data).

        :return: ``'completed'`` or ``'early_stopped'``.
        :raises NonFiniteLossError: on a NaN/inf loss or gradient.
        :raises WalltimeReached: after writing a checkpoint when the deadline approaches.
        """
        from tqdm import tqdm

        config = self.config
        n_batches = self.train_set.n_batches(config.batch_size)
        bar = tqdm(
            total=config.epochs * n_batches,
            initial=self.epoch * n_batches + self.batch_in_epoch,
            disable=not self.progress,
            desc='train',
            leave=False,
        )
        try:
            while self.epoch < config.epochs and not self.stopped_early:
                batches = self.train_set.batches(
                    config.batch_size,
                    shuffle_seed=self.seed * 1_000_003 + self.epoch,
                    dtype=self.dtype,
                    device=self.device,
                    skip=self.batch_in_epoch,
                )
                for batch in batches:
                    start = time.monotonic()
                    pred, loss = self._train_step(batch)
                    acc = ErrorAccumulator(self.accumulator)
                    acc.update(pred, batch, loss)
                    self.accumulator = acc.state
                    self.step += 1
                    self.batch_in_epoch += 1
                    self._step_times.append(time.monotonic() - start)
                    bar.update(1)
                    bar.set_postfix(epoch=self.epoch + 1, loss=f'{loss:.3g}')
                    if self.step % config.checkpoint_every == 0:
                        self._save()
                    self._check_walltime()
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
