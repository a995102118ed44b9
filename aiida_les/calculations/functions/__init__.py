"""Calcfunctions that transform datasets (and export models) inside the provenance graph."""

from aiida_les.calculations.functions.export_committee import export_committee
from aiida_les.calculations.functions.extract_frames import extract_frames
from aiida_les.calculations.functions.merge_datasets import merge_datasets
from aiida_les.calculations.functions.select_structures import select_structures

__all__ = ('export_committee', 'extract_frames', 'merge_datasets', 'select_structures')
