"""Molecular-dynamics workchains: the restart-aware base workchain around ``les.md``."""
