"""Model settings shared by tests: a tiny architecture that trains in seconds."""

from __future__ import annotations

__all__ = ['TINY_MODEL']

#: ``model`` section of a tiny LES model (8 features, one interaction, 3.5 Å cutoff): fast, not accurate.
TINY_MODEL = {
    'n_features': 8,
    'n_radial': 4,
    'readout_hidden': 8,
    'charge_hidden': 8,
    'n_interactions': 1,
    'cutoff': 3.5,
}
