"""The active-learning campaign workchain (``les.active_learning``) and its calcfunctions."""

from workchains.active_learning.workchain import LesActiveLearningWorkChain

__all__ = ('LesActiveLearningWorkChain',)
