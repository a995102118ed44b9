"""The phonon workchain (``les.phonons``): phonopy displacements evaluated by an LES model, NAC from its BEC."""

from workchains.phonons.workchain import LesPhononsWorkChain

__all__ = ('LesPhononsWorkChain',)
