"""Labelling workchains: the CP2K base restart workchain and the les.label fan-out workchain."""
