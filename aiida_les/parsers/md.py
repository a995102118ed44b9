"""LesMdParser: attach the trajectory with its per-frame committee uncertainties and the summary of a ``les-md`` run.

Decision on the uncertainty stop: a run that ``les-md`` stops because the committee force deviation exceeded
``max_force_std`` (program exit ``MD_UNCERTAIN``) is a **success** (exit status 0) flagged
``stopped_by_uncertainty: True`` in ``output_parameters``: in active learning that is the purpose of an exploration
run, its last frames are the candidates to label, and callers keep using ``is_finished_ok``. Unphysical dynamics
(atoms too close, energy exploding) are failures (420), with the frames up to that point still attached.
"""

from __future__ import annotations

import io
import typing as t

import ase
import ase.io
import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_les.parsers.base import BaseLesParser, ProgramReport, finite_or_none
from aiida_les.utils.conversion import ase_to_structure, ase_to_trajectory

__all__ = ('LesMdParser',)

#: Prefix of the per-frame entries ``les-md`` writes into ``atoms.info`` and ``atoms.arrays``.
PREFIX = 'les_'


class LesMdParser(BaseLesParser):
    """Parser of :class:`~aiida_les.calculations.md.LesMdCalculation`.

    The trajectory arrays drop the ``les_`` prefix of the program's extxyz keys: per frame ``energy`` [eV],
    ``temperature_K``, ``max_force_std``/``mean_force_std`` [eV/Å], ``energy_std_per_atom`` [eV],
    ``max_charge_std`` [e], ``min_distance`` [Å] (NaN when no pair is closer than the program's check radius,
    ``min_distance`` of the configuration); per atom (shape ``(n_frames, n_atoms, ...)``) ``forces`` [eV/Å],
    ``charges`` [e], ``force_std`` [eV/Å]. Step ids and times [fs] are the trajectory's ``steps`` and ``times``.
    """

    ERROR_MAP: t.ClassVar[dict[str, str]] = {
        **BaseLesParser.ERROR_MAP,
        'MD_ATOMS_TOO_CLOSE': 'ERROR_MD_UNSTABLE',
        'MD_ENERGY_EXPLODED': 'ERROR_MD_UNSTABLE',
    }
    #: Program exit names that end a run successfully.
    SUCCESS_NAMES = ('MD_UNCERTAIN',)

    def parse_outputs(self, report: ProgramReport, files: list[str], **kwargs) -> ExitCode | None:
        """Attach ``trajectory``, ``final_structure`` and ``output_parameters``; return the exit code."""
        calc = self.node.process_class
        stopped_by_uncertainty = report.error_name in self.SUCCESS_NAMES
        failure = None if stopped_by_uncertainty else self.error_exit_code(report)
        md_failure = failure is not None and failure.status == self.exit_codes.ERROR_MD_UNSTABLE.status
        if failure is not None and not md_failure:
            return failure
        if failure is None and not (report.finished or stopped_by_uncertainty):
            self._attach_partial_trajectory(files)
            return self.incomplete_exit_code()

        if calc._SUMMARY_FILENAME not in files:
            return self.exit_codes.ERROR_SUMMARY_FILE_MISSING
        try:
            summary = self.read_json(calc._SUMMARY_FILENAME)
        except ValueError as exception:
            return self.exit_codes.ERROR_SUMMARY_FILE_READ.format(error=str(exception))
        if calc._TRAJECTORY_FILENAME not in files:
            return self.exit_codes.ERROR_TRAJECTORY_FILE_MISSING
        try:
            frames = self._read_frames(calc._TRAJECTORY_FILENAME)
            trajectory = self._trajectory(frames)
        except ValueError as exception:
            return self.exit_codes.ERROR_TRAJECTORY_FILE_READ.format(error=str(exception))

        per_frame = summary.get('frames') or []
        if len(per_frame) == trajectory.numsteps:
            distances = [entry.get('min_distance') for entry in per_frame]
            trajectory.set_array('min_distance', np.array([np.nan if d is None else d for d in distances], dtype=float))
        self.out('trajectory', trajectory)
        last = frames[-1]
        final = ase.Atoms(numbers=last.numbers, positions=last.positions, cell=last.cell, pbc=last.pbc)
        self.out('final_structure', ase_to_structure(final))
        self.out('output_parameters', orm.Dict(self._parameters(summary, stopped_by_uncertainty)))
        return failure

    def _attach_partial_trajectory(self, files: list[str]) -> None:
        """Attach the frames a killed run wrote (the program appends every frame as it goes), if readable."""
        calc = self.node.process_class
        if calc._TRAJECTORY_FILENAME not in files:
            return
        try:
            frames = self._read_frames(calc._TRAJECTORY_FILENAME)
            trajectory = self._trajectory(frames)
        except ValueError:
            return
        self.out('trajectory', trajectory)

    def _read_frames(self, filename: str) -> list[ase.Atoms]:
        content = self.retrieved.base.repository.get_object_content(filename, mode='r')
        try:
            frames = ase.io.read(io.StringIO(content), index=':', format='extxyz')
        except Exception as exception:
            raise ValueError(f'{filename} is not readable extxyz: {exception}') from exception
        if not frames:
            raise ValueError(f'{filename} holds no frames')
        return frames

    @staticmethod
    def _trajectory(frames: list[ase.Atoms]) -> orm.TrajectoryData:
        """Return the TrajectoryData with the ``les_*`` entries as arrays (prefix dropped)."""
        info_keys, atom_keys = set(), set()
        for atoms in frames:
            for key in list(atoms.info):
                if key.startswith(PREFIX):
                    atoms.info[key[len(PREFIX) :]] = atoms.info.pop(key)
                    info_keys.add(key[len(PREFIX) :])
            for key in list(atoms.arrays):
                if key.startswith(PREFIX):
                    atoms.arrays[key[len(PREFIX) :]] = atoms.arrays.pop(key)
                    atom_keys.add(key[len(PREFIX) :])
        steps = [atoms.info.pop('step', index) for index, atoms in enumerate(frames)]
        times = [atoms.info.pop('time_fs', float('nan')) for atoms in frames]
        info_keys -= {'step', 'time_fs'}
        return ase_to_trajectory(
            frames, info_keys=sorted(info_keys), atom_keys=sorted(atom_keys), stepids=steps, times=times
        )

    @staticmethod
    def _parameters(summary: dict[str, t.Any], stopped_by_uncertainty: bool) -> dict[str, t.Any]:
        """Return the summary without its per-frame list (that is in the trajectory), plus the uncertainty flag and
        the closest approach [Å] over the written frames.
        """
        parameters = {key: value for key, value in summary.items() if key not in ('frames', 'history')}
        per_frame = summary.get('frames') or summary.get('history') or []
        distances = [entry['min_distance'] for entry in per_frame if entry.get('min_distance') is not None]
        finite = [d for d in distances if isinstance(d, int | float) and d == d and d != float('inf')]
        parameters['min_distance_min'] = min(finite) if finite else None
        parameters['stopped_by_uncertainty'] = stopped_by_uncertainty
        return finite_or_none(parameters)
