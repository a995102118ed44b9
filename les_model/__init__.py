"""Latent Ewald Summation (LES) machine-learning potentials in pure torch + ase.

This package never imports :mod:`aiida`: the AiiDA plugin (:mod:`aiida_les`) talks to it only through the
``les-train``, ``les-md`` and ``les-eval`` programs and a few light helpers (config validation).

The public names below are imported lazily, so ``import les_model`` (and reading ``__version__``) does not load torch.
"""

import importlib

__version__ = '0.1.0'

_EXPORTS = {
    'LesModel': 'les_model.nn.model',
    'LesCalculator': 'les_model.calculator',
    'load_model': 'les_model.io',
    'save_model': 'les_model.io',
    'load_config': 'les_model.config',
    'validate_config': 'les_model.config',
    'LatentEwald': 'les_model.electrostatics.latent_ewald',
    'CoulombEnergy': 'les_model.electrostatics.coulomb',
    'QEq': 'les_model.nn.qeq',
}

__all__ = ['__version__', *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
