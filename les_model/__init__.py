"""Latent Ewald Summation (LES) machine-learning potentials in pure torch + ase.

This package never imports :mod:`aiida`: the AiiDA plugin (:mod:`aiida_les`) talks to it only through the
``les-train``, ``les-md`` and ``les-eval`` programs and a few light helpers (config validation).
"""

__version__ = '0.1.0'

__all__ = ['__version__']
