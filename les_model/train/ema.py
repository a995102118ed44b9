"""Exponential moving average (EMA) of model weights, used for validation and the saved model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ['ExponentialMovingAverage']


class ExponentialMovingAverage:
    """Shadow weights ``w_ema <- d w_ema + (1 - d) w`` with warm-up ``d_t = min(decay, (1 + t) / (10 + t))``.

    :param model: the trained model (its floating parameters are tracked).
    :param decay: EMA decay in [0, 1); 0 makes the shadow equal to the current weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f'decay must be in [0, 1), got {decay}')
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow weights towards the current ones."""
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for name, param in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].mul_(d).add_(param.detach(), alpha=1.0 - d)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the shadow weights into ``model`` (restored on exit)."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters() if n in self.shadow}
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in self.shadow:
                    param.copy_(self.shadow[name])
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in backup:
                        param.copy_(backup[name])

    def state_dict(self) -> dict:
        """Decay, update count and shadow weights, for the checkpoint."""
        return {'decay': self.decay, 'updates': self.updates, 'shadow': {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.decay = float(state['decay'])
        self.updates = int(state['updates'])
        for name, value in state['shadow'].items():
            self.shadow[name].copy_(value)
