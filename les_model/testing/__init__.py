"""Reusable physics checks and reference structures for tests (finite differences, invariances, Madelung crystals).

Import from the submodules: :mod:`les_model.testing.physics` (``check_forces``, ``check_stress``,
``check_rotation_invariance``, ``check_translation_invariance`` and the underlying autograd / finite-difference
helpers) and :mod:`les_model.testing.structures` (``rocksalt``, ``cesium_chloride``, ``zincblende``,
``conventional_cell``, ``random_ionic_system``, ``batch_from_atoms``, ``MADELUNG``).
"""
