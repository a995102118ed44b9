"""Electrostatics: Coulomb kernels (point charges, Gaussian-smeared with the LES k cutoff) times summations.

Summations: direct k-space (:mod:`.kspace`), particle mesh (:mod:`.mesh`), real-space Ewald (:mod:`.ewald`), particle-
mesh Ewald (:mod:`.pme`), non-periodic pair sums (:mod:`.realspace`); the slab correction (:mod:`.slab`); one batched
dispatcher over non-periodic, slab and bulk structures (:mod:`.dispatch`) behind the two modules the model and the
data generators use, :class:`~les_model.electrostatics.latent_ewald.LatentEwald` (LES energy of latent charges) and
:class:`~les_model.electrostatics.coulomb.CoulombEnergy` (converged point-charge energy). Pure torch; no learnable
parameters (those live in :mod:`les_model.nn`).
"""
