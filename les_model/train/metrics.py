"""Error accumulators (MAE / RMSE over an epoch) and the learning-curve plot.

Reported units: energy per atom in meV/atom, forces in meV/Å, stress in meV/Å^3, dipole in me Å, BEC in me.

Dipoles and Born charges of a model trained on energies and forces only are charge-derived, and the latent charges
have a scale (and, without the sign convention of :mod:`les_model.nn.charge_sign`, a sign) that energies do not
fix. Besides MAE/RMSE they are therefore reported as ``R^2`` raw and after the best global scale ``s`` (least
squares ``label ~ s * prediction``; a negative ``s`` means the sign is wrong): ``<label>_r2``, ``<label>_scale``,
``<label>_r2_scaled`` and ``<label>_rmse_scaled``. A model without latent charges (short range) predicts no
dipoles or Born charges, so none of these are reported for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from les_model import _keys as K
from les_model.train.loss import dipole_difference

__all__ = ['ErrorAccumulator', 'plot_learning_curve']

#: Labels compared as charge-derived responses (R^2 and best-scale metrics; skipped for short-range models).
_RESPONSES = (K.DIPOLE, K.BEC)

_NAMES = {
    K.ENERGY: 'energy_per_atom',
    K.FORCES: 'forces',
    K.STRESS: 'stress',
    K.DIPOLE: 'dipole',
    K.BEC: 'bec',
}


class ErrorAccumulator:
    """Accumulate absolute and squared errors of every label over batches (state is a plain dict)."""

    def __init__(self, state: Mapping[str, list[float]] | None = None):
        self.state: dict[str, list[float]] = {k: list(v) for k, v in (state or {}).items()}

    def update(self, pred: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor], loss: float) -> None:
        """Add one batch: errors of every label present (masked), and the batch loss."""
        abs_sum, sq_sum, count = self.state.setdefault('loss', [0.0, 0.0, 0.0])
        self.state['loss'] = [abs_sum + loss, sq_sum, count + 1]
        n_atoms = data[K.N_ATOMS].to(pred[K.ENERGY].dtype)
        has_charges = K.CHARGES in pred and bool(pred[K.CHARGES].detach().abs().any())
        for key, name in _NAMES.items():
            if key not in data or key not in pred or (key in _RESPONSES and not has_charges):
                continue
            mask = data[K.MASK_OF[key]]
            if key == K.DIPOLE:  # periodic cells: modulo the polarization quantum, as in the loss
                diff = dipole_difference(pred[key].detach(), data[key], data[K.CELL], data[K.PBC])
            else:
                diff = (pred[key].detach() - data[key]).reshape(pred[key].shape[0], -1)
            if key == K.ENERGY:
                diff = diff / n_atoms[:, None]
            if key in (K.FORCES, K.BEC):
                mask = mask[data[K.BATCH]]
            diff = diff[mask]
            if diff.numel() == 0:
                continue
            entry = self.state.setdefault(name, [0.0, 0.0, 0.0])
            entry[0] += float(diff.abs().sum())
            entry[1] += float(diff.square().sum())
            entry[2] += float(diff.numel())
            if key in _RESPONSES:
                prediction = pred[key].detach().reshape(pred[key].shape[0], -1)[mask]
                label = prediction - diff  # for periodic dipoles: the label on the prediction's branch
                moments = self.state.setdefault(f'{name}:moments', [0.0] * 5)
                for index, value in enumerate(
                    ((prediction * label).sum(), prediction.square().sum(), label.square().sum(), label.sum())
                ):
                    moments[index] += float(value)
                moments[4] += float(label.numel())

    def summary(self) -> dict[str, float]:
        """``{'loss': mean batch loss, '<label>_mae': ..., '<label>_rmse': ...}`` in meV-based units, plus the
        R^2 / best-scale entries of dipoles and Born charges (module docstring).
        """
        out: dict[str, float] = {}
        for name, values in self.state.items():
            if name.endswith(':moments'):
                out.update(_response_summary(name.split(':')[0], *values))
                continue
            abs_sum, sq_sum, count = values
            if count == 0:
                continue
            if name == 'loss':
                out['loss'] = abs_sum / count
                continue
            out[f'{name}_mae'] = 1000.0 * abs_sum / count
            out[f'{name}_rmse'] = 1000.0 * (sq_sum / count) ** 0.5
        return out


def _response_summary(name: str, pl: float, pp: float, ll: float, l_sum: float, count: float) -> dict[str, float]:
    """R^2 raw and after the best global scale from accumulated moments (sums of p*l, p^2, l^2, l and the count)."""
    if count == 0:
        return {}
    total = ll - l_sum * l_sum / count  # sum of squared deviations of the labels from their mean
    scale = pl / pp if pp > 0 else 0.0
    residual_raw = pp - 2.0 * pl + ll
    residual_scaled = max(ll - scale * pl, 0.0)  # = s^2 pp - 2 s pl + ll at the least-squares s
    out = {f'{name}_scale': scale, f'{name}_rmse_scaled': 1000.0 * (residual_scaled / count) ** 0.5}
    if total > 0:
        out[f'{name}_r2'] = 1.0 - residual_raw / total
        out[f'{name}_r2_scaled'] = 1.0 - residual_scaled / total
    return out


def plot_learning_curve(members: Sequence[Mapping], path: str | Path) -> Path:
    """Plot train / validation energy and force RMSE per epoch for every committee member.

    :param members: entries of ``metrics.json['members']`` (each with an ``epochs`` list).
    :param path: PNG file to write.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for panel, (name, unit) in zip(axes, [('energy_per_atom', 'meV/atom'), ('forces', 'meV/Å')], strict=True):
        for member in members:
            epochs = member.get('epochs', [])
            for split, style in (('train', '-'), ('valid', '--')):
                points = [(e['epoch'], e[split][f'{name}_rmse']) for e in epochs if f'{name}_rmse' in e.get(split, {})]
                if points:
                    x, y = zip(*points, strict=True)
                    panel.plot(x, y, style, label=f'member {member["member"]} {split}')
        panel.set_xlabel('epoch')
        panel.set_ylabel(f'{name} RMSE ({unit})')
        if panel.lines:  # a run stopped before its first epoch has nothing to plot
            panel.set_yscale('log')
            panel.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
