"""Frame origin: the ``atoms.info`` keys that say where a dataset frame came from and which job labelled it.

Every frame a campaign labels carries these keys through selection, labelling, splitting and merging (they are plain
extxyz ``info`` entries, so they also survive export). They name nodes by UUID, which stays valid across
``verdi archive`` export and import; the links of the provenance graph say the same, the keys make it one lookup.
"""

from __future__ import annotations

import typing as t

__all__ = (
    'COPY',
    'GENERATION',
    'LABEL_JOB_UUID',
    'MD_STEP',
    'ORIGIN',
    'ORIGIN_INDEX',
    'ORIGIN_KEYS',
    'ORIGIN_UUID',
    'SEED',
    'STRUCTURE_UUID',
    'TEMPERATURE',
    'origin_of',
)

ORIGIN: t.Final[str] = 'origin'  # str | 'md' (an MD trajectory), 'initial' (a seed or its copy), 'dataset'
ORIGIN_UUID: t.Final[str] = 'origin_uuid'  # str | UUID of the TrajectoryData, seed StructureData or dataset
ORIGIN_INDEX: t.Final[str] = 'origin_index'  # int | index of the frame in that trajectory or dataset
MD_STEP: t.Final[str] = 'origin_md_step'  # int | MD step of the frame (trajectory ``steps``)
GENERATION: t.Final[str] = 'origin_generation'  # int | campaign generation whose MD produced the frame
TEMPERATURE: t.Final[str] = 'origin_temperature_K'  # float | thermostat temperature of that MD [K]
SEED: t.Final[str] = 'origin_seed'  # str | label of the seed structure (campaign ``structures`` key)
COPY: t.Final[str] = 'origin_copy'  # int | initial frames: 0 = the seed itself, k = its k-th perturbed copy
STRUCTURE_UUID: t.Final[str] = 'structure_uuid'  # str | UUID of the StructureData the labelling job got
LABEL_JOB_UUID: t.Final[str] = 'label_job_uuid'  # str | UUID of the CalcJob (les.cp2k, les.ase_label) that labelled it

ORIGIN_KEYS: t.Final[tuple[str, ...]] = (
    ORIGIN,
    ORIGIN_UUID,
    ORIGIN_INDEX,
    MD_STEP,
    GENERATION,
    TEMPERATURE,
    SEED,
    COPY,
    STRUCTURE_UUID,
    LABEL_JOB_UUID,
)


def origin_of(info: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return the origin entries of a frame's ``info`` (the keys of :data:`ORIGIN_KEYS` that are present)."""
    return {key: info[key] for key in ORIGIN_KEYS if key in info}
