"""``les-eval config.yaml [--device ...] [--dtype ...]``: predictions, errors and committee uncertainty on a data set.

Writes ``predictions_file`` (extxyz: the input frames with their labels, plus ``les_energy``, ``les_stress``,
``les_dipole`` and the per-frame uncertainty ``les_max_force_std``, ``les_mean_force_std``,
``les_energy_std_per_atom``, ``les_max_charge_std`` in ``atoms.info``, and ``les_forces``, ``les_charges``,
``les_force_std`` (and ``les_bec``) arrays; eV, Å, e like every extxyz file) and ``metrics_file`` (JSON: MAE/RMSE
against the labels present, the committee uncertainty, per frame and summarised). ``metrics_file`` uses one unit
system, milli-units of eV and e (:data:`METRIC_UNITS`, also written as its ``units`` entry): meV, meV/atom, meV/Å,
meV/Å^3, me Å, me. stdout prints the RMSEs with their units.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from les_model.cli._common import CliFailure, base_parser, check_files, read_config, run_main
from les_model.cli.exit_codes import ExitCode

__all__ = ['METRIC_UNITS', 'main']

#: Unit of every number in ``metrics.json`` by key: errors ``<label>_mae``/``<label>_rmse`` (label = energy_per_atom,
#: forces, stress, dipole, bec), per-frame ``energy``/``energy_error_per_atom``, uncertainties (per frame and their
#: ``max``/``mean``). The errors come from ``les_model.train.metrics`` in these units; the rest is converted here.
#: Dipole and Born-charge errors also come as ``<label>_r2``, ``<label>_r2_scaled`` and ``<label>_scale``
#: (dimensionless) and ``<label>_rmse_scaled`` (the label's unit).
METRIC_UNITS = {
    'energy_per_atom': 'meV/atom',
    'forces': 'meV/Å',
    'stress': 'meV/Å^3',
    'dipole': 'me Å',
    'bec': 'me',
    'energy': 'meV',
    'energy_error_per_atom': 'meV/atom',
    'max_force_std': 'meV/Å',
    'mean_force_std': 'meV/Å',
    'energy_std_per_atom': 'meV/atom',
    'max_charge_std': 'me',
    'r2': 'dimensionless',
    'scale': 'dimensionless',
}
_MILLI = 1000.0  # eV -> meV, e -> me


def _run(argv) -> ExitCode:
    parser = base_parser('les-eval', 'Evaluate one LES model or a committee on an extxyz file.', 'eval')
    args = parser.parse_args(argv)
    config = read_config(args.config, 'eval', args)
    check_files(config.data_file, *config.models)

    import ase.io

    from les_model import _keys as K
    from les_model.data.atoms import atoms_to_sample, collate
    from les_model.electrostatics.polarization import divide_by_sqrt_eps_inf
    from les_model.io import IncompatibleModelError, load_model
    from les_model.train.metrics import ErrorAccumulator
    from les_model.train.trainer import resolve_device, resolve_dtype
    from les_model.uncertainty import FRAME_KEYS, committee_statistics

    try:
        device = resolve_device(config.device)
    except ValueError as exc:
        raise CliFailure(ExitCode.DEVICE_UNAVAILABLE, str(exc)) from exc
    dtype = resolve_dtype(config.dtype)
    try:
        frames = ase.io.read(config.data_file, index=':')
        samples = [atoms_to_sample(a, config.keys, i) for i, a in enumerate(frames)]
    except Exception as exc:
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'cannot read {config.data_file}: {exc}') from exc
    try:
        models = [load_model(p, map_location=device, dtype=dtype) for p in config.models]
    except IncompatibleModelError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc

    accumulator = ErrorAccumulator()
    calibration_data: dict[str, list[np.ndarray]] = {'std': [], 'error': [], 'numbers': []}
    per_frame: list[dict] = []
    out_frames = []
    for start in range(0, len(samples), config.batch_size):
        chunk = samples[start : start + config.batch_size]
        batch = collate(chunk, dtype=dtype, device=device)
        any_periodic = bool(batch[K.PBC].all(dim=1).any())
        predictions = []
        for model in models:
            try:
                pred = model(batch, compute_forces=True, compute_stress=any_periodic, compute_bec=config.compute_bec)
            except ValueError as exc:
                raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
            predictions.append({k: v.detach() for k, v in pred.items() if k != K.NODE_FEATURES})
        stats = committee_statistics(predictions, batch[K.BATCH], batch[K.N_ATOMS], batch[K.TOTAL_CHARGE])
        if config.eps_inf is not None and K.BEC in stats:
            stats[K.BEC] = divide_by_sqrt_eps_inf(stats[K.BEC], float(config.eps_inf))
        accumulator.update(stats, batch, 0.0)
        if len(models) > 1 and K.FORCES in batch:
            labelled = batch[K.FORCES_MASK][batch[K.BATCH]].bool()
            error = (stats[K.FORCES] - batch[K.FORCES])[labelled]
            calibration_data['error'].append(error.cpu().double().numpy())
            calibration_data['std'].append(stats['force_std'][labelled].cpu().double().numpy())
            calibration_data['numbers'].append(batch[K.ATOMIC_NUMBERS][labelled].cpu().numpy())
        offsets = np.concatenate([[0], np.cumsum(batch[K.N_ATOMS].cpu().numpy())])
        for b in range(len(chunk)):
            atoms_slice = slice(int(offsets[b]), int(offsets[b + 1]))
            frame = frames[start + b].copy()
            frame.calc = frames[start + b].calc
            info = {'index': start + b, 'n_atoms': int(batch[K.N_ATOMS][b])}
            info['energy'] = float(stats[K.ENERGY][b])
            for key in FRAME_KEYS:
                info[key] = float(stats[key][b])
            if K.ENERGY in batch and bool(batch[K.ENERGY_MASK][b]):
                info['energy_error_per_atom'] = (info['energy'] - float(batch[K.ENERGY][b])) / info['n_atoms']
            per_frame.append(info)
            frame.info.update({f'les_{k}': v for k, v in info.items() if k not in ('index', 'n_atoms')})
            frame.info['les_dipole'] = stats[K.DIPOLE][b].cpu().double().numpy()
            if K.STRESS in stats and frame.pbc.all():
                frame.info['les_stress'] = stats[K.STRESS][b].cpu().double().numpy().reshape(9)
            frame.arrays['les_forces'] = stats[K.FORCES][atoms_slice].cpu().double().numpy()
            frame.arrays['les_charges'] = stats[K.CHARGES][atoms_slice].cpu().double().numpy()
            frame.arrays['les_force_std'] = stats['force_std'][atoms_slice].cpu().double().numpy()
            if config.compute_bec:
                frame.arrays['les_bec'] = stats[K.BEC][atoms_slice].cpu().double().numpy().reshape(-1, 9)
            out_frames.append(frame)

    ase.io.write(config.predictions_file, out_frames, format='extxyz')
    errors = accumulator.summary()  # already meV-based
    errors.pop('loss', None)
    milli_frames = [{k: v if k in ('index', 'n_atoms') else _MILLI * v for k, v in f.items()} for f in per_frame]
    uncertainty = {
        key: {
            'max': max(f[key] for f in milli_frames),
            'mean': float(np.mean([f[key] for f in milli_frames])),
        }
        for key in FRAME_KEYS
    }
    metrics = {
        'n_structures': len(frames),
        'committee_size': len(models),
        'model_files': list(config.models),
        'errors': errors,
        'units': METRIC_UNITS,
        'bec_divided_by_sqrt_eps_inf': config.eps_inf,
        'uncertainty': uncertainty,
        'frames': milli_frames,
    }
    calibration = _calibrate(calibration_data, config.calibration_plot)
    if calibration is not None:
        metrics['calibration'] = calibration.as_dict()
    Path(config.metrics_file).write_text(json.dumps(metrics, indent=1), encoding='utf-8')
    print(f'errors (committee mean vs labels): {_with_units(errors) or "none, no labels in data_file"}')
    spread = uncertainty['max_force_std']
    print(f'committee max force std: max {spread["max"]:.4g}, mean {spread["mean"]:.4g} meV/Å over frames')
    if calibration is not None:
        print(
            f'force uncertainty calibration: scale {calibration.scale:.3g} (expected error = scale x committee std), '
            f'ENCE {calibration.ence_raw:.3g} -> {calibration.ence_calibrated:.3g}, miscalibration area '
            f'{calibration.miscalibration_area_raw:.3g} -> {calibration.miscalibration_area_calibrated:.3g}'
        )
    print(f'LES-EVAL FINISHED structures={len(frames)}')
    return ExitCode.SUCCESS


def _calibrate(data: dict[str, list[np.ndarray]], plot: str):
    """Fit the committee's force-uncertainty calibration on the labelled atoms; None without data or spread."""
    from les_model.calibration import fit_force_calibration, plot_force_calibration

    if not data['std']:
        return None
    std, error, numbers = (np.concatenate(data[key]) for key in ('std', 'error', 'numbers'))
    if std.size == 0 or not np.any(std > 0):
        return None
    calibration = fit_force_calibration(std, error, numbers)
    if plot:
        plot_force_calibration(std, error, calibration, plot)
    return calibration


def _with_units(errors: dict[str, float]) -> str:
    """``forces_rmse=123.4 meV/Å, ...`` for the RMSEs, 4 significant digits."""
    return ', '.join(
        f'{key}={value:.4g} {METRIC_UNITS[key.rsplit("_", 1)[0]]}'
        for key, value in errors.items()
        if key.endswith('_rmse')
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-eval``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    return run_main('les-eval', lambda: _run(argv))


if __name__ == '__main__':
    sys.exit(main())
