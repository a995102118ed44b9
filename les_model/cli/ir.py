"""``les-ir trajectory.extxyz [options]``: IR spectrum of an ``les-md`` trajectory, as data and a plot.

The spectrum comes from :func:`les_model.applications.infrared.ir_spectrum_from_trajectory`: by default the
autocorrelation of the dipole ``sum_i q_i r_i`` built from the per-frame latent charges (``les_charges``) and
positions unwrapped across periodic boundaries; ``--method velocities`` projects the velocities on the per-frame
Born charges (``les_bec``) or charges instead. The time step comes from ``info['les_time_fs']`` unless
``--timestep`` is given.

Outputs (in ``--output-dir``, default the current directory): ``<prefix>.dat`` (columns frequency [THz],
wavenumber [cm^-1], intensity [(e Å/fs)^2 fs]), ``<prefix>.json`` (the same arrays plus method, time step [fs],
number of frames, correlation length [frames] and the wavenumber of the strongest peak [cm^-1]) and
``<prefix>.png``. The last stdout line is ``LES-IR FINISHED peak_cm-1=<value>``. Exit codes as the other programs
(:class:`~les_model.cli.exit_codes.ExitCode`): 4 for a missing or unusable trajectory, 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from les_model.cli._common import CliFailure, check_files, run_main
from les_model.cli.exit_codes import ExitCode

__all__ = ['main']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='les-ir',
        description='IR spectrum of an les-md trajectory (no configuration file: the options below).',
        epilog=(
            'Outputs in --output-dir: <prefix>.dat (frequency [THz], wavenumber [cm^-1], intensity\n'
            '[(e Å/fs)^2 fs, arbitrary scale]), <prefix>.json (the same, plus method, n_frames, timestep_fs,\n'
            'max_lag_frames, peak_wavenumber_cm-1) and <prefix>.png. Exit 4: trajectory missing or unusable\n'
            '(fewer than 4 frames, no les_charges, uneven les_time_fs); 2: bad options. See les_model/cli/README.md.'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('trajectory', help='extxyz trajectory written by les-md (les_charges, les_time_fs)')
    parser.add_argument('--method', choices=['dipole', 'velocities'], default='dipole', help='default: dipole')
    parser.add_argument('--timestep', type=float, help='time between frames in fs (default: from les_time_fs)')
    parser.add_argument('--max-lag', type=int, help='correlation length in frames (default: half the frames)')
    parser.add_argument('--max-wavenumber', type=float, help='upper limit of the plot in cm^-1')
    parser.add_argument('--prefix', default='ir_spectrum', help='output file name stem (default: ir_spectrum)')
    parser.add_argument('--output-dir', default='.', help='output directory (default: current directory)')
    return parser


def _run(argv) -> ExitCode:
    args = _parser().parse_args(argv)
    if args.timestep is not None and args.timestep <= 0:
        raise CliFailure(ExitCode.USAGE, f'--timestep must be > 0 fs, got {args.timestep}')
    check_files(args.trajectory)

    import ase.io
    import numpy as np

    from les_model.applications.infrared import THZ_TO_CM, ir_spectrum_from_trajectory

    try:
        frames = ase.io.read(args.trajectory, index=':')
    except Exception as exc:  # ase raises many types for unreadable files
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'cannot read {args.trajectory}: {exc}') from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            spectrum = ir_spectrum_from_trajectory(
                frames, method=args.method, timestep=args.timestep, max_lag=args.max_lag
            )
        except (ValueError, KeyError) as exc:
            raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'{args.trajectory}: {exc}') from exc
    for warning in caught:
        print(f'les-ir: warning: {warning.message}', file=sys.stderr)

    directory = Path(args.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spectrum.write(directory / f'{args.prefix}.dat')
    spectrum.plot(directory / f'{args.prefix}.png', max_wavenumber=args.max_wavenumber)
    # The zero-frequency point carries no absorption (omega^2 factor); start the search above it.
    peak = spectrum.peak_frequency(fmin=float(spectrum.frequencies[1])) * THZ_TO_CM
    timestep = float(spectrum.lags[1] - spectrum.lags[0]) if len(spectrum.lags) > 1 else args.timestep
    summary = {
        'method': spectrum.method,
        'trajectory': str(args.trajectory),
        'n_frames': len(frames),
        'timestep_fs': timestep,
        'max_lag_frames': len(spectrum.lags) - 1,
        'peak_wavenumber_cm-1': peak,
        'units': {'frequencies': 'THz', 'wavenumbers': 'cm^-1', 'intensity': '(e Angstrom/fs)^2 fs, arbitrary scale'},
        'frequencies': np.round(spectrum.frequencies, 8).tolist(),
        'wavenumbers': np.round(spectrum.wavenumbers, 6).tolist(),
        'intensity': spectrum.intensity.tolist(),
    }
    (directory / f'{args.prefix}.json').write_text(json.dumps(summary, indent=1))
    print(
        f'IR spectrum ({spectrum.method}) of {len(frames)} frames written to {directory / args.prefix}.{{dat,json,png}}'
    )
    print(f'LES-IR FINISHED peak_cm-1={peak:.1f}')
    return ExitCode.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-ir``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    return run_main('les-ir', lambda: _run(argv))


if __name__ == '__main__':
    sys.exit(main())
