r"""Infrared (IR) absorption spectra from molecular dynamics: dipole autocorrelation or BEC-projected velocities.

Linear response gives the IR absorption (classical line shape, arbitrary overall scale) as

.. math::

    I(\omega) \propto \omega^2 \int_{-\infty}^{\infty} \langle \mu(0) \cdot \mu(t) \rangle e^{-i \omega t}
    \, dt = \int_{-\infty}^{\infty} \langle \dot\mu(0) \cdot \dot\mu(t) \rangle e^{-i \omega t} \, dt ,
    \qquad \dot\mu_a(t) = \sum_i \sum_b Z^*_{i,ab}(t) \, v_{i,b}(t) ,

so the spectrum follows either from the dipole time series (``method='dipole'``, the :math:`\omega^2`-weighted
Fourier transform of its autocorrelation) or from the velocities projected on the Born effective charges
(``method='velocities'``, the Fourier transform of the autocorrelation of the dipole current). Autocorrelations use
the unbiased estimator (FFT, zero padded), are truncated at ``max_lag`` and tapered by a Hann window before the
cosine transform. Units: dipoles in e Å, velocities in Å/fs, time in fs, frequencies in THz and cm^-1; intensities
are in (e Å / fs)^2 fs (per unit frequency in 1/fs), i.e. arbitrary but consistent between the two methods.

From an ``les-md`` trajectory the dipole is :math:`\mu = \sum_i q_i r_i` with the per-frame latent charges
(``les_charges``) and positions unwrapped across periodic boundaries (continuous in time even for fractional
charges); velocities come from the stored momenta.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np
from ase import units

from les_model.units import THZ_TO_CM

__all__ = [
    'IRSpectrum',
    'autocorrelation',
    'dipoles_from_frames',
    'ir_spectrum_from_dipoles',
    'ir_spectrum_from_trajectory',
    'ir_spectrum_from_velocities',
    'unwrap_positions',
]


@dataclasses.dataclass
class IRSpectrum:
    """An IR spectrum.

    :ivar frequencies: (M,) frequencies in THz (from 0).
    :ivar intensity: (M,) absorption in (e Å / fs)^2 fs (arbitrary scale).
    :ivar lags: (L,) correlation lags in fs.
    :ivar correlation: (L,) windowed autocorrelation of the dipole current (e Å / fs)^2 or of the dipole (e Å)^2.
    :ivar method: ``'dipole'`` or ``'velocities'``.
    """

    frequencies: np.ndarray
    intensity: np.ndarray
    lags: np.ndarray
    correlation: np.ndarray
    method: str

    @property
    def wavenumbers(self) -> np.ndarray:
        """(M,) frequencies in cm^-1."""
        return self.frequencies * THZ_TO_CM

    def peak_frequency(self, fmin: float = 0.0, fmax: float = np.inf) -> float:
        """Frequency in THz of the highest point of the spectrum between ``fmin`` and ``fmax`` (THz), refined by a
        parabola through the maximum and its neighbours.
        """
        mask = (self.frequencies >= fmin) & (self.frequencies <= fmax)
        if not mask.any():
            raise ValueError(f'no frequency between {fmin} and {fmax} THz (grid up to {self.frequencies[-1]:.4g})')
        idx = np.flatnonzero(mask)[np.argmax(self.intensity[mask])]
        if 0 < idx < len(self.intensity) - 1:
            y0, y1, y2 = self.intensity[idx - 1 : idx + 2]
            denom = y0 - 2.0 * y1 + y2
            shift = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
            return float(self.frequencies[idx] + shift * (self.frequencies[1] - self.frequencies[0]))
        return float(self.frequencies[idx])

    def write(self, path: str | Path) -> Path:
        """Write ``frequency [THz]  wavenumber [cm^-1]  intensity`` columns with a header."""
        header = f'IR spectrum ({self.method}); intensity in (e A/fs)^2 fs\nfrequency_THz wavenumber_cm-1 intensity'
        data = np.column_stack([self.frequencies, self.wavenumbers, self.intensity])
        np.savetxt(path, data, header=header, fmt='%.8e')
        return Path(path)

    def plot(self, path: str | Path, max_wavenumber: float | None = None, title: str = '') -> Path:
        """Write a PNG of the spectrum against wavenumber (normalised to its maximum)."""
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        scale = self.intensity.max() if self.intensity.max() > 0 else 1.0
        ax.plot(self.wavenumbers, self.intensity / scale, color='tab:red', lw=1)
        ax.set_xlim(0, max_wavenumber or self.wavenumbers[-1])
        ax.set_xlabel('Wavenumber (cm$^{-1}$)')
        ax.set_ylabel('IR absorption (normalised)')
        ax.set_title(title or f'IR spectrum ({self.method})')
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return Path(path)


def autocorrelation(signal: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Unbiased autocorrelation ``C(k) = sum_a <x_a(t) x_a(t + k)>_t``, summed over components, by FFT.

    :param signal: (T,) or (T, d) time series.
    :param max_lag: largest lag in steps (default T - 1).
    :return: (max_lag + 1,) autocorrelation.
    """
    x = np.asarray(signal, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f'signal must have shape (T,) or (T, d) with T >= 2, got {np.shape(signal)}')
    n = x.shape[0]
    max_lag = n - 1 if max_lag is None else int(max_lag)
    if not 0 < max_lag < n:
        raise ValueError(f'max_lag must be between 1 and {n - 1} steps, got {max_lag}')
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, n=size, axis=0)
    corr = np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0)[: max_lag + 1].sum(axis=1)
    return corr / (n - np.arange(max_lag + 1))


def _spectrum(corr: np.ndarray, timestep: float, zero_pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hann-windowed cosine transform of a one-sided correlation; returns frequencies (THz), spectrum, window*corr."""
    n = len(corr)
    window = 0.5 * (1.0 + np.cos(np.pi * np.arange(n) / n))  # half Hann: 1 at lag 0, -> 0 at max lag
    tapered = corr * window
    size = max(int(zero_pad), 1) * 2 * n
    even = np.zeros(size)
    even[:n] = tapered
    even[size - n + 1 :] = tapered[1:][::-1]  # symmetric extension C(-t) = C(t)
    transform = np.fft.rfft(even).real * timestep  # in corr units x fs
    freq_per_fs = np.fft.rfftfreq(size, d=timestep)
    return freq_per_fs * 1000.0, transform, tapered  # 1/fs = 1000 THz


def _check_timestep(timestep: float) -> None:
    if not timestep > 0:
        raise ValueError(f'timestep must be > 0 fs, got {timestep}')


def ir_spectrum_from_dipoles(
    dipoles: np.ndarray, timestep: float, max_lag: int | None = None, zero_pad: int = 4
) -> IRSpectrum:
    """IR spectrum from a dipole time series: ``omega^2`` times the transform of its autocorrelation.

    :param dipoles: (T, 3) dipoles in e Å, equally spaced in time (the mean is removed).
    :param timestep: time between frames in fs.
    :param max_lag: correlation length in frames (default T // 2); sets the resolution ~ 1 / (max_lag dt).
    :param zero_pad: zero-padding factor of the transform (finer frequency grid, not finer resolution).
    :return: :class:`IRSpectrum` (``method='dipole'``).
    """
    _check_timestep(timestep)
    mu = np.asarray(dipoles, dtype=float)
    if mu.ndim != 2 or mu.shape[1] != 3:
        raise ValueError(f'dipoles must have shape (T, 3), got {mu.shape}')
    corr = autocorrelation(mu - mu.mean(axis=0), max_lag or max(mu.shape[0] // 2, 1))
    freq, transform, tapered = _spectrum(corr, timestep, zero_pad)
    omega = 2.0 * np.pi * freq / 1000.0  # rad / fs
    return IRSpectrum(freq, omega**2 * transform, np.arange(len(corr)) * timestep, tapered, 'dipole')


def ir_spectrum_from_velocities(
    velocities: np.ndarray, born: np.ndarray, timestep: float, max_lag: int | None = None, zero_pad: int = 4
) -> IRSpectrum:
    """IR spectrum from velocities projected on Born effective charges: transform of the dipole-current ACF.

    :param velocities: (T, N, 3) velocities in Å/fs.
    :param born: (N, 3, 3) fixed or (T, N, 3, 3) per-frame Born charges ``Z[i, a, b] = d mu_a / d r_ib`` in e;
        (N,) or (T, N) charges are taken as isotropic ``q_i I``.
    :param timestep: time between frames in fs.
    :param max_lag: correlation length in frames (default T // 2).
    :param zero_pad: zero-padding factor of the transform.
    :return: :class:`IRSpectrum` (``method='velocities'``).
    """
    _check_timestep(timestep)
    v = np.asarray(velocities, dtype=float)
    if v.ndim != 3 or v.shape[2] != 3:
        raise ValueError(f'velocities must have shape (T, N, 3), got {v.shape}')
    z = np.asarray(born, dtype=float)
    if z.shape in (v.shape[1:2], v.shape[:2]):
        z = z[..., None, None] * np.eye(3)
    if z.shape == (v.shape[1], 3, 3):
        current = np.einsum('iab,tib->ta', z, v)
    elif z.shape == (*v.shape[:2], 3, 3):
        current = np.einsum('tiab,tib->ta', z, v)
    else:
        raise ValueError(f'born must have shape (N, 3, 3), (T, N, 3, 3), (N,) or (T, N) for {v.shape}, got {z.shape}')
    corr = autocorrelation(current - current.mean(axis=0), max_lag or max(v.shape[0] // 2, 1))
    freq, transform, tapered = _spectrum(corr, timestep, zero_pad)
    return IRSpectrum(freq, transform, np.arange(len(corr)) * timestep, tapered, 'velocities')


def unwrap_positions(positions: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Undo periodic wrapping: frame-to-frame displacements are replaced by their minimum images.

    Valid when no atom moves more than half a cell between frames.

    :param positions: (T, N, 3) positions in Å.
    :param cells: (T, 3, 3) or (3, 3) lattice vectors as rows in Å.
    :return: (T, N, 3) continuous positions in Å.
    """
    pos = np.asarray(positions, dtype=float)
    cells = np.broadcast_to(np.asarray(cells, dtype=float), (pos.shape[0], 3, 3))
    out = pos.copy()
    for t in range(1, pos.shape[0]):
        step = pos[t] - pos[t - 1]
        frac = step @ np.linalg.inv(cells[t])
        out[t] = out[t - 1] + (frac - np.round(frac)) @ cells[t]
    return out


def dipoles_from_frames(frames: Sequence[ase.Atoms], charges_key: str = 'les_charges') -> np.ndarray:
    """Dipoles ``sum_i q_i r_i`` (e Å) of MD frames from per-frame charges and unwrapped positions.

    :param frames: trajectory frames with ``arrays[charges_key]`` (N,) in e.
    :return: (T, 3) dipoles in e Å.
    """
    if not all(charges_key in f.arrays for f in frames):
        raise ValueError(f'every frame needs a per-atom {charges_key!r} array')
    positions = np.array([f.positions for f in frames])
    if all(frames[0].pbc):
        positions = unwrap_positions(positions, np.array([f.cell.array for f in frames]))
    charges = np.array([f.arrays[charges_key] for f in frames])
    return np.einsum('ti,tia->ta', charges, positions)


def ir_spectrum_from_trajectory(
    frames: str | Path | Sequence[ase.Atoms],
    method: str = 'dipole',
    born: np.ndarray | None = None,
    timestep: float | None = None,
    max_lag: int | None = None,
    output_dir: str | Path | None = None,
    prefix: str = 'ir_spectrum',
) -> IRSpectrum:
    """IR spectrum of an ``les-md`` trajectory (or any frames with charges and momenta).

    :param frames: trajectory file (extxyz) or frames, equally spaced in time.
    :param method: ``'dipole'`` (latent-charge dipoles) or ``'velocities'`` (BEC-projected velocities).
    :param born: for ``'velocities'``: (N, 3, 3) Born charges in e; default: per-frame ``les_bec`` arrays if present,
        otherwise the per-frame latent charges ``les_charges`` (rigid-charge approximation).
    :param timestep: time between frames in fs (default: from ``info['les_time_fs']``).
    :param max_lag: correlation length in frames.
    :param output_dir: write ``<prefix>.dat`` and ``<prefix>.png`` there.
    :return: :class:`IRSpectrum`.
    """
    if isinstance(frames, str | Path):
        import ase.io

        frames = ase.io.read(frames, index=':')
    frames = list(frames)
    if len(frames) < 4:
        raise ValueError(f'an IR spectrum needs at least 4 frames, got {len(frames)}')
    if timestep is None:
        times = np.array([f.info.get('les_time_fs', np.nan) for f in frames], dtype=float)
        steps = np.diff(times)
        if len(steps) > 2 and not np.isclose(steps[-1], steps[0], rtol=1e-6):
            # les-md also writes the final step, which is off the write_every grid when the run stopped early
            warnings.warn(f'dropping the last frame (time {times[-1]} fs): not on the sampling grid', stacklevel=2)
            frames, steps = frames[:-1], steps[:-1]
        if not np.all(np.isfinite(steps)) or steps[0] <= 0 or not np.allclose(steps, steps[0], rtol=1e-6):
            raise ValueError('timestep not given and les_time_fs is missing or not equally spaced')
        timestep = float(steps[0])
    if method == 'dipole':
        spectrum = ir_spectrum_from_dipoles(dipoles_from_frames(frames), timestep, max_lag)
    elif method == 'velocities':
        velocities = np.array([f.get_velocities() for f in frames]) * units.fs  # ase units -> Å/fs
        if born is None:
            key = 'les_bec' if 'les_bec' in frames[0].arrays else 'les_charges'
            born = np.array([f.arrays[key] for f in frames])
            if key == 'les_bec':
                born = born.reshape(len(frames), -1, 3, 3)
        spectrum = ir_spectrum_from_velocities(velocities, born, timestep, max_lag)
    else:
        raise ValueError(f"method must be 'dipole' or 'velocities', got {method!r}")
    if output_dir is not None:
        directory = Path(output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        spectrum.write(directory / f'{prefix}.dat')
        spectrum.plot(directory / f'{prefix}.png')
    return spectrum
