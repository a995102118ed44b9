"""AiiDA plugin for active-learning campaigns of Latent Ewald Summation (LES) potentials."""

from les_model import __version__

__all__ = ['__version__']
