"""The exploration schedule of a campaign: which MD runs each generation starts, advancing as the committee improves.

``exploration_schedule`` is a list of stages, or a mapping of seed label to such a list (per-seed schedules); each
stage is ``{'temperatures': [K, ...], 'pressure': bar or None}``: one MD run per seed and temperature, NVT (Langevin)
without a pressure and NPT (MTK barostat, isothermal-isobaric ensemble) at that pressure. All seeds share one stage
counter; a seed whose list is shorter stays at its last stage. The campaign starts at stage 0 and moves to the next
stage after a generation whose accurate fraction (frames whose calibrated expected force error is below
``trust_lower``) reaches ``schedule_advance_fraction`` (as DP-GEN moves on when the committee is accurate on what it
explores): the stopping rule counts a generation as converged only at the last stage. An empty schedule is one stage
made of ``temperatures``, NVT, as campaigns always ran.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

__all__ = ('MdRun', 'check_schedule', 'md_run_config', 'md_runs', 'n_stages', 'next_stage')


@dataclasses.dataclass(frozen=True)
class MdRun:
    """One MD exploration: seed label, temperature (K) and pressure (bar; None = NVT)."""

    seed: str
    temperature: float
    pressure: float | None = None

    @property
    def suffix(self) -> str:
        """Call-link suffix: ``water_300K`` (NVT, as before schedules existed) or ``water_300K_1000bar`` (NPT)."""
        text = f'{self.seed}_{int(self.temperature)}K'
        return text if self.pressure is None else f'{text}_{self.pressure:g}bar'.replace('.', 'p').replace('-', 'm')


def _stages_of(schedule, seed: str, temperatures: Sequence[float]) -> list[dict]:
    if not schedule:
        return [{'temperatures': list(temperatures), 'pressure': None}]
    if isinstance(schedule, Mapping):
        return list(schedule.get(seed) or [{'temperatures': list(temperatures), 'pressure': None}])
    return list(schedule)


def md_run_config(temperature: float, pressure: float | None) -> dict:
    """The ``les-md`` settings of one run: the temperature; with a pressure, NPT with the MTK barostat."""
    config = {'temperature': float(temperature)}
    if pressure is not None:
        config.update(ensemble='npt', barostat='mtk', pressure=float(pressure))
    return config


def n_stages(schedule, seeds: Sequence[str], temperatures: Sequence[float]) -> int:
    """Number of stages of the longest per-seed schedule."""
    return max(len(_stages_of(schedule, seed, temperatures)) for seed in seeds)


def md_runs(schedule, stage: int, seeds: Sequence[str], temperatures: Sequence[float]) -> list[MdRun]:
    """The MD runs of ``stage`` (0-based) for the seeds, in seed order then stage order."""
    runs = []
    for seed in seeds:
        stages = _stages_of(schedule, seed, temperatures)
        current = stages[min(stage, len(stages) - 1)]
        pressure = current.get('pressure')
        for temperature in current['temperatures']:
            runs.append(MdRun(seed, float(temperature), None if pressure is None else float(pressure)))
    return runs


def next_stage(stage: int, accurate_fraction: float | None, stages: int, advance_fraction: float) -> int:
    """The stage of the next generation: one further when this one's accurate fraction reached ``advance_fraction``."""
    if accurate_fraction is not None and accurate_fraction >= advance_fraction and stage + 1 < stages:
        return stage + 1
    return stage


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_schedule(schedule, seeds: Mapping[str, bool]) -> str | None:
    """Why ``schedule`` is invalid for seeds ``{label: periodic in 3D}``, or None.

    Stages need a non-empty list of positive temperatures; a pressure needs a number and a seed periodic in 3D (NPT
    changes the cell); a per-seed mapping may name only known seeds.
    """
    if not schedule:
        return None
    if isinstance(schedule, Mapping):
        unknown = sorted(set(schedule) - set(seeds))
        if unknown:
            return f'exploration_schedule names unknown seeds {unknown}; the seeds are {sorted(seeds)}.'
        per_seed = dict(schedule)
    elif isinstance(schedule, list | tuple):
        per_seed = dict.fromkeys(seeds, schedule)
    else:
        return f'exploration_schedule must be a list of stages or a mapping of seed to stages, got {schedule!r}.'
    for seed, stages in per_seed.items():
        if not isinstance(stages, list | tuple) or not stages:
            return f'exploration_schedule of seed `{seed}` must be a non-empty list of stages, got {stages!r}.'
        for index, stage in enumerate(stages):
            where = f'exploration_schedule stage {index} of seed `{seed}`'
            if not isinstance(stage, Mapping) or set(stage) - {'temperatures', 'pressure'}:
                return (
                    f'{where} must be a mapping with `temperatures` (K) and optional `pressure` (bar), got {stage!r}.'
                )
            temperatures = stage.get('temperatures')
            if not isinstance(temperatures, list | tuple) or not temperatures:
                return f'{where}: `temperatures` must be a non-empty list of kelvin, got {temperatures!r}.'
            if not all(_number(t) and t > 0 for t in temperatures):
                return f'{where}: temperatures must be positive numbers (K), got {temperatures!r}.'
            pressure = stage.get('pressure')
            if pressure is not None:
                if not _number(pressure):
                    return f'{where}: `pressure` must be a number (bar) or null, got {pressure!r}.'
                if not seeds[seed]:
                    return f'{where}: a pressure needs a seed periodic in three directions (NPT changes the cell).'
    return None
