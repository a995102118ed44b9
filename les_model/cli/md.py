"""``les-md config.yaml [--device ...] [--dtype ...]``: MD with a committee, stopped when uncertain or unphysical.

Writes ``trajectory_file`` (extxyz; every ``write_every`` steps plus the first and the last frame) with per-frame
``les_*`` entries in ``atoms.info`` (step, time_fs, energy, temperature_K, max_force_std, mean_force_std,
energy_std_per_atom, max_charge_std, and total_charge [e] and spin_multiplicity, the charge and spin the run is at)
and ``les_forces`` / ``les_charges`` / ``les_force_std`` arrays, and ``summary_file`` (JSON). Exit codes: SUCCESS,
MD_UNCERTAIN, MD_ATOMS_TOO_CLOSE, MD_ENERGY_EXPLODED (the frame that triggered the stop is the last one written).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from les_model.cli._common import CliFailure, base_parser, check_files, read_config, run_main
from les_model.cli.exit_codes import ExitCode

__all__ = ['main', 'make_dynamics', 'min_interatomic_distance', 'thermalize']


def min_interatomic_distance(atoms, cutoff: float) -> float:
    """Smallest interatomic distance in Å (with periodic images), or ``inf`` if none is below ``cutoff``."""
    import vesin

    if len(atoms) < 2 and not atoms.pbc.any():
        return math.inf
    box = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=False)
    (d,) = nl.compute(atoms.positions, box, [bool(p) for p in atoms.pbc], 'd')
    return float(d.min()) if len(d) else math.inf


def thermalize(atoms, temperature: float, seed: int) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` [K] from ``seed``, centre-of-mass motion removed."""
    from ase.md import velocitydistribution as vd

    rng = np.random.default_rng(seed)
    if hasattr(vd, 'thermalize_momenta'):  # ase >= 3.28
        vd.thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    else:  # pragma: no cover - older ase
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    vd.Stationary(atoms)


def make_dynamics(atoms, config):
    """Build the ASE integrator of ``config.ensemble`` (velocities must already be set)."""
    from ase import units

    dt = config.timestep * units.fs
    if config.ensemble == 'nve':
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if config.ensemble == 'nvt':
        from ase.md.langevin import Langevin

        rng = np.random.default_rng(config.seed + 1)
        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=config.temperature,
            friction=config.friction / units.fs,
            fixcm=False,
            rng=rng,
        )
    if not atoms.pbc.all():
        raise CliFailure(ExitCode.INVALID_CONFIG, 'ensemble npt needs a structure periodic in all three directions')
    if config.barostat == 'mtk':
        from ase.md.nose_hoover_chain import IsotropicMTKNPT

        return IsotropicMTKNPT(
            atoms,
            timestep=dt,
            temperature_K=config.temperature,
            pressure_au=config.pressure * units.bar,
            tdamp=config.taut * units.fs,
            pdamp=config.taup * units.fs,
        )
    from ase.md.nptberendsen import NPTBerendsen

    return NPTBerendsen(
        atoms,
        timestep=dt,
        temperature_K=config.temperature,
        taut=config.taut * units.fs,
        pressure_au=config.pressure * units.bar,
        taup=config.taup * units.fs,
        compressibility_au=config.compressibility / units.bar,
    )


def _frame(atoms, step: int, time_fs: float, results: dict, total_charge: float, multiplicity: int):
    frame = atoms.copy()
    frame.calc = None
    frame.info.update(
        les_step=step,
        les_time_fs=time_fs,
        les_energy=float(results['energy']),
        les_temperature_K=float(atoms.get_temperature()),
        # Every frame says the charge and spin it was run at, so a label of it is computed at the same ones.
        les_total_charge=float(total_charge),
        les_spin_multiplicity=int(multiplicity),
    )
    for key in ('max_force_std', 'mean_force_std', 'energy_std_per_atom', 'max_charge_std'):
        frame.info[f'les_{key}'] = float(results[key])
    frame.arrays['les_forces'] = np.asarray(results['forces'])
    frame.arrays['les_charges'] = np.asarray(results['charges'])
    if 'force_std' in results:
        frame.arrays['les_force_std'] = np.asarray(results['force_std'])
    return frame


def _run(argv) -> ExitCode:
    parser = base_parser('les-md', 'Molecular dynamics with a committee of LES models.', 'md')
    args = parser.parse_args(argv)
    config = read_config(args.config, 'md', args)
    check_files(config.structure, *config.models)

    import ase.io

    from les_model.calculator import LesCalculator
    from les_model.io import IncompatibleModelError

    try:
        atoms = ase.io.read(config.structure)
    except Exception as exc:
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'cannot read structure {config.structure}: {exc}') from exc
    try:
        calc = LesCalculator(
            list(config.models),
            device=config.device,
            dtype=config.dtype,
            total_charge=config.total_charge,
            scripted=config.scripted,
        )
    except IncompatibleModelError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    except ValueError as exc:
        raise CliFailure(ExitCode.DEVICE_UNAVAILABLE, str(exc)) from exc
    atoms.calc = calc
    # The calculator takes the configured charge over the structure file's (see LesCalculator).
    total_charge = config.total_charge if config.total_charge is not None else atoms.info.get('total_charge', 0.0)
    if config.ensemble != 'nve' or not np.any(atoms.get_velocities()):
        thermalize(atoms, config.temperature, config.seed)
    dynamics = make_dynamics(atoms, config)

    trajectory = Path(config.trajectory_file)
    trajectory.unlink(missing_ok=True)
    try:
        atoms.get_potential_energy()
    except ValueError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    n_atoms = len(atoms)
    e_start = calc.results['energy'] / n_atoms
    frames_written = 0
    history = []
    max_std_seen = 0.0
    code, reason = ExitCode.SUCCESS, 'completed'
    step = 0
    while True:
        results = calc.results
        energy_per_atom = results['energy'] / n_atoms
        d_min = min_interatomic_distance(atoms, max(config.min_distance, 1e-3)) if config.min_distance > 0 else math.inf
        max_std_seen = max(max_std_seen, results['max_force_std'])
        # Each bound is off at 0 (the config's convention); a non-finite energy always stops the run.
        drift = abs(energy_per_atom - e_start)
        if not math.isfinite(energy_per_atom) or (config.max_energy_change > 0 and drift > config.max_energy_change):
            code, reason = ExitCode.MD_ENERGY_EXPLODED, f'energy per atom changed by {energy_per_atom - e_start:.3g} eV'
        elif d_min < config.min_distance:
            code, reason = ExitCode.MD_ATOMS_TOO_CLOSE, f'atoms closer than {config.min_distance} Å ({d_min:.3g} Å)'
        elif config.max_force_std > 0 and results['max_force_std'] > config.max_force_std:
            code = ExitCode.MD_UNCERTAIN
            reason = f'max force std {results["max_force_std"]:.3g} eV/Å exceeds {config.max_force_std} eV/Å'
        stop = code != ExitCode.SUCCESS or step >= config.steps
        if step % config.write_every == 0 or stop:
            frame = _frame(atoms, step, step * config.timestep, results, total_charge, config.multiplicity)
            if hasattr(dynamics, 'get_conserved_energy'):  # MTK NPT: the extended-system energy, constant in theory
                frame.info['les_conserved_energy'] = float(dynamics.get_conserved_energy())
            ase.io.write(trajectory, frame, format='extxyz', append=True)
            frames_written += 1
            history.append(
                {
                    'step': step,
                    'energy': results['energy'],
                    'max_force_std': results['max_force_std'],
                    'energy_std_per_atom': results['energy_std_per_atom'],
                    'max_charge_std': results['max_charge_std'],
                    'min_distance': d_min if math.isfinite(d_min) else None,
                }
            )
        if stop:
            break
        dynamics.run(1)
        atoms.get_potential_energy()  # results for the current positions and cell (cached when up to date)
        step += 1

    summary = {
        'exit_code': int(code),
        'exit_name': code.name,
        'stop_reason': reason,
        'steps_completed': step,
        'steps_requested': config.steps,
        'time_fs': step * config.timestep,
        'frames_written': frames_written,
        'committee_size': calc.committee_size,
        'total_charge': float(total_charge),
        'multiplicity': config.multiplicity,
        'max_force_std_max': max_std_seen,
        'max_force_std_mean': float(np.mean([h['max_force_std'] for h in history])),
        'frames': history,
    }
    Path(config.summary_file).write_text(json.dumps(summary, indent=1), encoding='utf-8')
    if code != ExitCode.SUCCESS:
        raise CliFailure(code, f'stopped at step {step}: {reason}')
    print(f'LES-MD FINISHED steps={step} frames={frames_written}')
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-md``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    return run_main('les-md', lambda: _run(argv))


if __name__ == '__main__':
    sys.exit(main())
