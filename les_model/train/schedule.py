"""Learning-rate schedule: linear warm-up per optimiser step, then plateau, cosine or constant decay per epoch.

``lr(step) = lr * w(step) * d`` with the warm-up factor ``w = min(1, (step + 1) / warmup_steps)`` and the decay
factor ``d``: ``plateau`` multiplies it by ``factor`` after ``patience`` epochs without a relative improvement of the
monitored loss (warm-up epochs are not counted), ``cosine`` follows ``min_lr/lr + (1 - min_lr/lr) (1 + cos(pi t)) / 2``
over the epochs after warm-up, ``none`` keeps 1. The rate never goes below ``min_lr`` once warm-up is over.
Why the warm-up: Adam's first steps use poor second-moment estimates, and a full learning rate there throws a fresh
model far from the data's energy scale (large early error spikes that the rest of a short run has to undo).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ['LearningRateSchedule']

#: Relative decrease of the monitored loss that counts as an improvement for the plateau rule.
_MIN_RELATIVE_IMPROVEMENT = 1e-4


class LearningRateSchedule:
    """Set the learning rate of ``optimizer`` before every step (:meth:`before_step`) and after every epoch.

    :param optimizer: the optimiser (all parameter groups get the same rate).
    :param kind: ``'plateau'``, ``'cosine'`` or ``'none'``.
    :param lr: peak learning rate.
    :param min_lr: floor of the decay.
    :param epochs: epoch budget (cosine period).
    :param steps_per_epoch: optimiser steps per epoch.
    :param warmup_epochs: epochs of linear warm-up (0 = none; fractional values allowed).
    :param patience: plateau: epochs without improvement before the rate is lowered.
    :param factor: plateau: factor in (0, 1) applied then.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str,
        lr: float,
        min_lr: float,
        epochs: int,
        steps_per_epoch: int,
        warmup_epochs: float = 0.0,
        patience: int = 10,
        factor: float = 0.5,
    ):
        if kind not in ('plateau', 'cosine', 'none'):
            raise ValueError(f"scheduler must be 'plateau', 'cosine' or 'none', got {kind!r}")
        self.optimizer, self.kind = optimizer, kind
        self.lr, self.min_lr, self.epochs = float(lr), float(min(min_lr, lr)), int(epochs)
        self.warmup_steps = max(0, round(warmup_epochs * steps_per_epoch))
        self.warmup_epochs = float(warmup_epochs)
        self.patience, self.factor = int(patience), float(factor)
        self.decay = 1.0
        self.best = math.inf
        self.bad_epochs = 0

    def current(self, step: int) -> float:
        """Learning rate for optimiser step ``step`` (0-based)."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return max(self.lr * self.decay, self.min_lr)

    def before_step(self, step: int) -> None:
        """Set the rate of step ``step`` on every parameter group."""
        rate = self.current(step)
        for group in self.optimizer.param_groups:
            group['lr'] = rate

    def after_epoch(self, epoch: int, monitor: float) -> None:
        """Update the decay after epoch ``epoch`` (1-based, just finished) whose monitored loss was ``monitor``."""
        if self.kind == 'cosine':
            span = max(self.epochs - self.warmup_epochs, 1.0)
            t = min(max(epoch - self.warmup_epochs, 0.0) / span, 1.0)
            floor = self.min_lr / self.lr
            self.decay = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        elif self.kind == 'plateau' and epoch > self.warmup_epochs:
            if monitor < self.best * (1.0 - _MIN_RELATIVE_IMPROVEMENT):
                self.best, self.bad_epochs = monitor, 0
            else:
                self.bad_epochs += 1
                if self.bad_epochs > self.patience:
                    self.decay *= self.factor
                    self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """Decay, best loss and epochs without improvement, for the checkpoint."""
        return {'decay': self.decay, 'best': self.best, 'bad_epochs': self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.decay, self.best, self.bad_epochs = float(state['decay']), float(state['best']), int(state['bad_epochs'])
