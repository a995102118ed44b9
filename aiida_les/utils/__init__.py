"""Helpers of the AiiDA plugin: ase <-> AiiDA data conversion, nested-dictionary merging, scheduler options."""

from aiida_les.utils.conversion import (
    ase_to_structure,
    ase_to_trajectory,
    dataset_to_structures,
    structure_to_ase,
    structures_to_dataset,
    trajectory_to_ase,
)
from aiida_les.utils.dicts import recursive_merge
from aiida_les.utils.resources import cpu_options, gpu_options

__all__ = (
    'ase_to_structure',
    'ase_to_trajectory',
    'cpu_options',
    'dataset_to_structures',
    'gpu_options',
    'recursive_merge',
    'structure_to_ase',
    'structures_to_dataset',
    'trajectory_to_ase',
)
