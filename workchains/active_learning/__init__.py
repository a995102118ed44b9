"""The active-learning campaign (``les.active_learning``), all of it: the workchain and what reads it back.

``workchain`` (outline), ``labelling`` (its labelling steps), ``functions`` and ``frames`` (calcfunctions and frame
provenance), ``parameters``, ``validation`` and ``builder`` (inputs), ``stopping`` (the stopping rule), ``links`` (the
call-link labels and process types it leaves in the graph), ``record`` (one generation, typed), ``history`` (reading a
campaign back from the graph), ``state`` and ``restart`` (continuing it), ``export`` (files and plots). The selection
itself is generic and stays in :mod:`aiida_les.selection` and ``les.select_structures``.
"""

from workchains.active_learning.workchain import LesActiveLearningWorkChain

__all__ = ('LesActiveLearningWorkChain',)
