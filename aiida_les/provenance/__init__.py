"""Provenance of a campaign: where each frame came from (:mod:`.origin`) and ready-made queries (:mod:`.queries`)."""
