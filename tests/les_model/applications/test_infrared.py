"""IR spectra: harmonic dipole signals peak at their frequencies; dipole and BEC-velocity routes agree."""

from __future__ import annotations

import math

import ase
import ase.io
import numpy as np
import pytest
from ase import units

from les_model.applications.infrared import (
    autocorrelation,
    ir_spectrum_from_dipoles,
    ir_spectrum_from_trajectory,
    ir_spectrum_from_velocities,
    unwrap_positions,
)

DT = 0.5  # fs


def band_area(spectrum, f0, half_width=3.0):
    mask = np.abs(spectrum.frequencies - f0) < half_width
    return np.trapezoid(spectrum.intensity[mask], spectrum.frequencies[mask])


def test_autocorrelation_matches_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    direct = [np.mean([x[t] @ x[t + k] for t in range(50 - k)]) for k in range(11)]
    np.testing.assert_allclose(autocorrelation(x, 10), direct, rtol=1e-12)
    with pytest.raises(ValueError, match='max_lag must be between 1 and 49'):
        autocorrelation(x, 50)


def test_harmonic_dipole_peaks_at_its_frequency():
    f0 = 45.3  # THz (1511 cm^-1)
    t = np.arange(4000) * DT
    direction = np.array([0.3, -0.5, 0.8])
    dipoles = 0.2 * np.cos(2 * math.pi * f0 * t / 1000.0 + 0.4)[:, None] * direction + 1.5  # constant offset
    spectrum = ir_spectrum_from_dipoles(dipoles, DT)
    assert spectrum.method == 'dipole'
    assert abs(spectrum.peak_frequency() - f0) < 0.05
    assert abs(spectrum.wavenumbers[1] / spectrum.frequencies[1] - 33.3564) < 1e-3
    assert spectrum.intensity[np.abs(spectrum.frequencies - f0) > 5].max() < 1e-3 * spectrum.intensity.max()


def test_two_modes_have_omega_squared_weighted_intensities():
    f1, f2, a1, a2 = 20.0, 60.0, 0.3, 0.2
    t = np.arange(8000) * DT / 1000.0  # ps
    dipoles = np.zeros((len(t), 3))
    dipoles[:, 0] = a1 * np.cos(2 * math.pi * f1 * t)
    dipoles[:, 1] = a2 * np.sin(2 * math.pi * f2 * t)
    spectrum = ir_spectrum_from_dipoles(dipoles, DT)
    assert abs(spectrum.peak_frequency(0, 40) - f1) < 0.05
    assert abs(spectrum.peak_frequency(40, 100) - f2) < 0.05
    ratio = band_area(spectrum, f2) / band_area(spectrum, f1)
    np.testing.assert_allclose(ratio, (a2 * f2) ** 2 / (a1 * f1) ** 2, rtol=0.03)


def oscillating_pair(f0, n_frames, amplitude=0.1, charge=0.8, box=6.0):
    """Two ions of charge +-q vibrating against each other in a cubic box (exact positions and velocities)."""
    t = np.arange(n_frames) * DT
    omega = 2 * math.pi * f0 / 1000.0  # rad/fs
    u = amplitude * np.sin(omega * t)
    du = amplitude * omega * np.cos(omega * t)
    drift = 0.02 * t[:, None] * np.array([1.0, 0.5, 0.0])  # common drift carries the pair across the boundary
    pos = np.zeros((n_frames, 2, 3))
    pos[:, 0] = np.array([5.5, 1.0, 1.0]) + drift
    pos[:, 1] = np.array([5.5, 3.0, 1.0]) + drift
    pos[:, 0, 0] += u
    pos[:, 1, 0] -= u
    vel = np.zeros_like(pos)
    vel[:, :, :] = np.array([0.02, 0.01, 0.0])
    vel[:, 0, 0] += du
    vel[:, 1, 0] -= du
    return t, pos, vel, np.array([charge, -charge]), box * np.eye(3)


def test_velocity_route_agrees_with_dipole_route():
    f0 = 30.0
    _, pos, vel, q, _ = oscillating_pair(f0, 4000)
    dip = ir_spectrum_from_dipoles(np.einsum('i,tia->ta', q, pos), DT)
    born = q[:, None, None] * np.eye(3)
    velo = ir_spectrum_from_velocities(vel, born, DT)
    assert abs(velo.peak_frequency() - f0) < 0.05
    assert abs(dip.peak_frequency() - f0) < 0.05
    np.testing.assert_allclose(band_area(velo, f0), band_area(dip, f0), rtol=0.02)
    # charges as (N,) and per-frame (T, N, 3, 3) tensors give the same spectrum
    np.testing.assert_allclose(ir_spectrum_from_velocities(vel, q, DT).intensity, velo.intensity, rtol=1e-10)
    per_frame = np.broadcast_to(born, (len(vel), 2, 3, 3))
    np.testing.assert_allclose(ir_spectrum_from_velocities(vel, per_frame, DT).intensity, velo.intensity, rtol=1e-10)
    with pytest.raises(ValueError, match='born must have shape'):
        ir_spectrum_from_velocities(vel, np.ones(3), DT)


def test_unwrap_positions_restores_continuous_paths():
    _, pos, _, _, cell = oscillating_pair(30.0, 500)
    wrapped = pos - np.floor(pos / 6.0) * 6.0
    assert np.abs(wrapped - pos).max() > 1.0  # the drift crossed the boundary
    unwrapped = unwrap_positions(wrapped, cell)
    np.testing.assert_allclose(unwrapped - unwrapped[0], pos - pos[0], atol=1e-10)


def test_spectrum_from_md_trajectory_file(tmp_path):
    f0 = 30.0
    t, pos, vel, q, cell = oscillating_pair(f0, 1200)
    frames = []
    for k in range(len(t)):
        atoms = ase.Atoms('NaCl', positions=pos[k], cell=cell, pbc=True)
        atoms.wrap()
        atoms.set_velocities(vel[k] / units.fs)  # Å/fs -> ase units (as les-md stores momenta)
        atoms.arrays['les_charges'] = q.copy()
        atoms.info['les_time_fs'] = float(t[k])
        frames.append(atoms)
    last = frames[-1].copy()  # les-md's final frame, off the sampling grid
    last.info['les_time_fs'] = float(t[-1] + 0.2)
    path = tmp_path / 'md.extxyz'
    ase.io.write(path, [*frames, last], format='extxyz')
    with pytest.warns(UserWarning, match='dropping the last frame'):
        dip = ir_spectrum_from_trajectory(path, output_dir=tmp_path, prefix='ir_dipole')
    # 600-frame correlation (300 fs): line width ~3 THz; the omega^2 factor moves the maximum of a broad line up
    assert abs(dip.peak_frequency() - f0) < 0.25
    assert (tmp_path / 'ir_dipole.dat').is_file()
    assert (tmp_path / 'ir_dipole.png').is_file()
    table = np.loadtxt(tmp_path / 'ir_dipole.dat')
    np.testing.assert_allclose(table[:, 2], dip.intensity, rtol=1e-7)
    velo = ir_spectrum_from_trajectory(frames, method='velocities')
    assert abs(velo.peak_frequency() - f0) < 0.25
    np.testing.assert_allclose(band_area(velo, f0), band_area(dip, f0), rtol=0.03)
    with pytest.raises(ValueError, match="method must be 'dipole' or 'velocities'"):
        ir_spectrum_from_trajectory(frames, method='raman')
