"""Training workchains: the restart-aware base workchain around ``les.train``."""
