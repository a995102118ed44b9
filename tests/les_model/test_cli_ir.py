"""The les-ir program: IR spectrum files from a small les-md-like trajectory with a known vibration."""

from __future__ import annotations

import json

import ase
import ase.io
import numpy as np
import pytest
from ase import units

from les_model.applications.infrared import THZ_TO_CM
from les_model.cli import ir
from les_model.cli.exit_codes import ExitCode

FREQUENCY_THZ = 10.0  # 333.6 cm^-1
#: The windowed line is ~50 cm^-1 wide at 600 fs of correlation; the omega^2 factor tilts it up by about 1 %.
PEAK_TOLERANCE = 0.02


def _trajectory(path, n_frames=1200, timestep=1.0, periodic=False):
    """A charged pair (+0.8 e / -0.8 e) stretching at 10 THz, written the way les-md writes frames."""
    omega = 2.0 * np.pi * FREQUENCY_THZ / 1000.0  # rad/fs
    frames = []
    for step in range(n_frames):
        t = step * timestep
        stretch = 0.05 * np.cos(omega * t)
        velocity = -0.05 * omega * np.sin(omega * t)  # Å/fs
        atoms = ase.Atoms('NaCl', positions=[[5.0 - stretch / 2, 5.0, 5.0], [7.4 + stretch / 2, 5.0, 5.0]])
        if periodic:
            atoms.cell = np.diag([10.0, 10.0, 10.0])
            atoms.pbc = True
            atoms.positions += [4.0, 0.0, 0.0]  # Cl leaves the cell and is wrapped: the dipole must stay continuous
            atoms.wrap()
        atoms.set_velocities(np.array([[-velocity / 2, 0, 0], [velocity / 2, 0, 0]]) / units.fs)
        atoms.info.update(les_step=step, les_time_fs=t)
        atoms.arrays['les_charges'] = np.array([0.8, -0.8])
        frames.append(atoms)
    ase.io.write(path, frames, format='extxyz')
    return path


@pytest.mark.parametrize('periodic', [False, True])
def test_ir_writes_data_json_and_plot(tmp_path, monkeypatch, capsys, periodic):
    trajectory = _trajectory(tmp_path / 'md.extxyz', periodic=periodic)
    monkeypatch.chdir(tmp_path)
    assert ir.main([str(trajectory), '--max-lag', '600', '--output-dir', 'out']) == ExitCode.SUCCESS
    for suffix in ('dat', 'json', 'png'):
        assert (tmp_path / 'out' / f'ir_spectrum.{suffix}').is_file(), suffix
    summary = json.loads((tmp_path / 'out' / 'ir_spectrum.json').read_text())
    assert summary['method'] == 'dipole'
    assert summary['n_frames'] == 1200
    assert summary['timestep_fs'] == pytest.approx(1.0)
    assert summary['peak_wavenumber_cm-1'] == pytest.approx(FREQUENCY_THZ * THZ_TO_CM, rel=PEAK_TOLERANCE)
    data = np.loadtxt(tmp_path / 'out' / 'ir_spectrum.dat')
    np.testing.assert_allclose(data[:, 2], summary['intensity'])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith('LES-IR FINISHED peak_cm-1=')


def test_ir_from_velocities_agrees(tmp_path):
    trajectory = _trajectory(tmp_path / 'md.extxyz')
    code = ir.main([str(trajectory), '--method', 'velocities', '--prefix', 'vel', '--output-dir', str(tmp_path)])
    assert code == ExitCode.SUCCESS
    summary = json.loads((tmp_path / 'vel.json').read_text())
    assert summary['method'] == 'velocities'
    assert summary['peak_wavenumber_cm-1'] == pytest.approx(FREQUENCY_THZ * THZ_TO_CM, rel=PEAK_TOLERANCE)


def test_ir_refuses_bad_input_with_one_line(tmp_path, capsys):
    assert ir.main([str(tmp_path / 'missing.extxyz')]) == ExitCode.INPUT_FILE_ERROR
    short = _trajectory(tmp_path / 'short.extxyz', n_frames=3)
    assert ir.main([str(short), '--output-dir', str(tmp_path)]) == ExitCode.INPUT_FILE_ERROR
    assert ir.main([str(short), '--timestep', '-1']) == ExitCode.USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith('les-ir: ERROR ') for line in lines)
    assert 'at least 4 frames' in lines[1]
    assert not (tmp_path / 'ir_spectrum.dat').exists()
