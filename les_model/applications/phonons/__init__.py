"""Harmonic phonons with phonopy and the non-analytic correction from (predicted) Born charges.

Modules: :mod:`.compute` (phonopy set-up, force constants, Gamma frequencies, bands, DOS), :mod:`.born` (Born charges
and NAC parameters), :mod:`.files` (phonopy files and plots), :mod:`.plots` (PNG plots), :mod:`.run`
(:func:`~.run.run_phonons`, everything in one call).
"""
