"""Calibration of the committee's force uncertainty against true force errors.

A committee's force deviation ``sigma_i`` (eV/Å, :func:`les_model.uncertainty.committee_statistics`: the RMS over
members of ``|F_i^k - <F_i>|``) is a prediction of the error of the committee mean ``e_i = |<F_i> - F_i^ref|``.
Committees of a few members trained on the same data are usually overconfident: ``e_i`` is several times ``sigma_i``.
Calibration fits one factor ``s`` so that ``s * sigma_i`` is the expected (root-mean-square) error:

    s^2 = sum_i |e_i|^2 / sum_i sigma_i^2

(the overall root-mean-variance then equals the overall RMSE; unlike the Gaussian maximum-likelihood
``mean(|e|^2 / sigma^2)`` it is not dominated by the atoms with the smallest ``sigma``). Per-element factors use the
same formula on the atoms of one element (reported; elements with fewer than :data:`MIN_ATOMS_PER_ELEMENT` atoms get the
global factor).

Two measures say how well ``sigma`` ranks and sizes the errors, before and after scaling:

- **ENCE** (expected normalised calibration error, Levi et al., Sensors 22, 5540 (2022)): atoms sorted by ``sigma``
  into equal-count bins; ``ENCE = mean_bins |RMV - RMSE| / RMV`` with ``RMV = sqrt(mean sigma^2)`` and
  ``RMSE = sqrt(mean |e|^2)`` per bin. 0 is perfect; scaling fixes the overall level, not the ranking.
- **Miscalibration area**: if each force-error component is Gaussian with variance ``sigma_i^2 / 3``, then
  ``3 |e_i|^2 / sigma_i^2`` follows a chi-square law with 3 degrees of freedom; for confidence levels p in (0, 1) the
  observed fraction of atoms inside the predicted p-ball is compared with p; the area is the mean ``|observed - p|``
  (0 perfect, 0.5 the worst).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = [
    'MIN_ATOMS_PER_ELEMENT',
    'ForceCalibration',
    'expected_normalised_calibration_error',
    'fit_force_calibration',
    'miscalibration_area',
    'plot_force_calibration',
]

#: Elements with fewer atoms than this get the global scale factor (too few to fit their own).
MIN_ATOMS_PER_ELEMENT = 10


@dataclasses.dataclass(frozen=True)
class ForceCalibration:
    """The fitted scale and the calibration measures (dimensionless unless a name says otherwise).

    ``scale``: expected force error = ``scale * sigma``; ``scale_per_element``: atomic number -> factor;
    ``ence_*`` and ``miscalibration_area_*``: the measures of the module docstring for ``sigma`` (raw) and
    ``scale * sigma`` (calibrated); ``force_error_rms_mev_per_ang`` and ``force_std_rms_mev_per_ang``: RMS over the
    atoms of ``|e_i|`` (the error vector's length: sqrt(3) times the per-component force RMSE) and of ``sigma``, meV/Å.
    """

    scale: float
    scale_per_element: dict[int, float]
    n_atoms: int
    ence_raw: float
    ence_calibrated: float
    miscalibration_area_raw: float
    miscalibration_area_calibrated: float
    force_error_rms_mev_per_ang: float
    force_std_rms_mev_per_ang: float

    def as_dict(self) -> dict:
        """JSON-ready dict (element keys as strings)."""
        out = dataclasses.asdict(self)
        out['scale_per_element'] = {str(z): s for z, s in self.scale_per_element.items()}
        return out


def _check(sigma: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sigma, error = np.asarray(sigma, dtype=float).reshape(-1), np.asarray(error, dtype=float).reshape(-1)
    if sigma.shape != error.shape:
        raise ValueError(f'sigma and error must have the same number of atoms, got {sigma.size} and {error.size}')
    if sigma.size == 0:
        raise ValueError('calibration needs at least one atom')
    if not (np.isfinite(sigma).all() and np.isfinite(error).all()):
        raise ValueError('sigma and error must be finite')
    if (sigma < 0).any() or (error < 0).any():
        raise ValueError('sigma and error are magnitudes and must be >= 0')
    return sigma, error


def _magnitudes(force_std, force_error) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(sigma, |e|)``; ``force_error`` may be (N,) magnitudes or (N,3) error vectors."""
    error = np.asarray(force_error, dtype=float)
    if error.ndim == 2 and error.shape[-1] == 3:
        error = np.linalg.norm(error, axis=-1)
    return _check(force_std, error)


def _binned(sigma: np.ndarray, error: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """RMV and RMSE of equal-count bins of atoms sorted by ``sigma``: two (n_bins,) arrays (fewer for few atoms)."""
    parts = np.array_split(np.argsort(sigma, kind='stable'), min(n_bins, sigma.size))
    rmv = np.array([np.sqrt(np.mean(sigma[part] ** 2)) for part in parts])
    rmse = np.array([np.sqrt(np.mean(error[part] ** 2)) for part in parts])
    return rmv, rmse


def _rms_scale(sigma: np.ndarray, error: np.ndarray) -> float:
    variance = float(np.sum(sigma**2))
    if variance <= 0.0:
        raise ValueError('every sigma is zero (a single model, or identical members): nothing to calibrate')
    return float(np.sqrt(np.sum(error**2) / variance))


def expected_normalised_calibration_error(sigma, error, n_bins: int = 10) -> float:
    """ENCE of predicted RMS errors ``sigma (N,)`` against errors ``error (N,)`` (module docstring); dimensionless."""
    rmv, rmse = _binned(*_check(sigma, error), n_bins)
    judged = rmv > 0.0
    if not judged.any():
        raise ValueError('every sigma is zero: ENCE is undefined')
    return float(np.mean(np.abs(rmv[judged] - rmse[judged]) / rmv[judged]))


def miscalibration_area(sigma, error, n_levels: int = 99) -> float:
    """Mean |observed - expected| coverage of 3-D Gaussian error balls of RMS radius ``sigma`` (module docstring)."""
    from scipy.stats import chi2

    sigma, error = _check(sigma, error)
    levels = np.linspace(0.0, 1.0, n_levels + 2)[1:-1]
    z = 3.0 * error**2 / np.maximum(sigma, np.finfo(float).tiny) ** 2
    observed = np.array([np.mean(z <= chi2.ppf(p, df=3)) for p in levels])
    return float(np.mean(np.abs(observed - levels)))


def fit_force_calibration(force_std, force_error, numbers=None, n_bins: int = 10) -> ForceCalibration:
    """Fit ``scale`` (and per-element factors) and measure calibration before and after.

    :param force_std: (N,) committee force deviation per atom, eV/Å.
    :param force_error: (N,) ``|<F_i> - F_i^ref|`` per atom, eV/Å (or an (N,3) array of error vectors).
    :param numbers: (N,) atomic numbers for the per-element factors (None: no per-element fit).
    :param n_bins: equal-count bins of the ENCE.
    """
    sigma, error = _magnitudes(force_std, force_error)
    scale = _rms_scale(sigma, error)
    per_element: dict[int, float] = {}
    if numbers is not None:
        numbers = np.asarray(numbers, dtype=int).reshape(-1)
        if numbers.shape != sigma.shape:
            raise ValueError(f'numbers must have one entry per atom ({sigma.size}), got {numbers.size}')
        for z in np.unique(numbers):
            mine = numbers == z
            fits = mine.sum() >= MIN_ATOMS_PER_ELEMENT and np.sum(sigma[mine] ** 2) > 0.0
            per_element[int(z)] = _rms_scale(sigma[mine], error[mine]) if fits else scale
    return ForceCalibration(
        scale=scale,
        scale_per_element=per_element,
        n_atoms=int(sigma.size),
        ence_raw=expected_normalised_calibration_error(sigma, error, n_bins),
        ence_calibrated=expected_normalised_calibration_error(scale * sigma, error, n_bins),
        miscalibration_area_raw=miscalibration_area(sigma, error),
        miscalibration_area_calibrated=miscalibration_area(scale * sigma, error),
        force_error_rms_mev_per_ang=1000.0 * float(np.sqrt(np.mean(error**2))),
        force_std_rms_mev_per_ang=1000.0 * float(np.sqrt(np.mean(sigma**2))),
    )


def plot_force_calibration(force_std, force_error, calibration: ForceCalibration, path, n_bins: int = 10) -> Path:
    """PNG: binned RMSE against binned RMV (meV/Å), raw and calibrated, with the ideal diagonal; returns the path."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rmv, rmse = (1000.0 * values for values in _binned(*_magnitudes(force_std, force_error), n_bins))
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    axis.loglog(rmv, rmse, 'o-', label=f'raw (ENCE {calibration.ence_raw:.2f})')
    axis.loglog(
        calibration.scale * rmv, rmse, 's-', label=f'x{calibration.scale:.2g} (ENCE {calibration.ence_calibrated:.2f})'
    )
    low = max(min(rmv.min(), calibration.scale * rmv.min(), rmse.min()) * 0.8, 1e-6)
    high = max(rmv.max(), calibration.scale * rmv.max(), rmse.max()) * 1.25
    axis.plot([low, high], [low, high], 'k--', lw=0.8, label='ideal')
    axis.set_xlabel('predicted force error, RMV per bin (meV/Å)')
    axis.set_ylabel('true force error, RMSE per bin (meV/Å)')
    axis.set_title(f'committee force uncertainty, {calibration.n_atoms} atoms')
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
