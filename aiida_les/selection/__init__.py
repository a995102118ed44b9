"""Active-learning selection: descriptors, candidate selection, initial frames and the stopping rule.

Plain numpy + ase (no AiiDA), so the logic is testable on its own; the workchains wrap it in calcfunctions.
"""

from aiida_les.selection.candidates import SelectionResult, farthest_point_sampling, select_candidates
from aiida_les.selection.descriptors import structure_descriptor
from aiida_les.selection.initial import perturbed_copies
from aiida_les.selection.stopping import StoppingDecision, evaluate_stopping_rule

__all__ = (
    'SelectionResult',
    'StoppingDecision',
    'evaluate_stopping_rule',
    'farthest_point_sampling',
    'perturbed_copies',
    'select_candidates',
    'structure_descriptor',
)
