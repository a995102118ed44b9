"""Active-learning selection: descriptors, candidate selection and initial frames.

Plain numpy + ase (no AiiDA), so the logic is testable on its own; the workchains wrap it in calcfunctions. The
campaign's stopping rule lives with the campaign (:mod:`workchains.active_learning.stopping`).
"""

from aiida_les.selection.candidates import SelectionResult, farthest_point_sampling, select_candidates
from aiida_les.selection.descriptors import structure_descriptor
from aiida_les.selection.initial import perturbed_copies

__all__ = (
    'SelectionResult',
    'farthest_point_sampling',
    'perturbed_copies',
    'select_candidates',
    'structure_descriptor',
)
