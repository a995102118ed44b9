"""Per-species reference energies E0 [eV] by least squares, with a defined answer when compositions do not fix them.

``E_total ~ sum_Z n_Z E0_Z``: with ``A`` (frames x species) the composition matrix, E0 solves ``min |A E0 - E|``.
When ``A`` is rank-deficient (every frame H2O, or H2O and NaCl frames only) only some combinations of E0 are fixed
by the data (for H2O: ``2 E0_H + E0_O``), and a plain least-squares solver returns one arbitrary member of the
solution set. Here the solution closest to a prior is taken instead: every species starts at the mean energy per
atom of the data, ``p``, and ``E0 = p + A^+ (E - A p)`` moves it only along the directions the data determines.
With a full-rank ``A`` this is the ordinary least-squares solution; otherwise the undetermined species share the
energy per atom evenly, a fixed rule rather than a numerical accident, and the fit says which species those are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase.data import chemical_symbols

from les_model import _keys as K

if TYPE_CHECKING:
    from les_model.data.dataset import StructureDataset

__all__ = ['ReferenceEnergyFit', 'fit_reference_energies']


class ReferenceEnergyFit(dict):
    """Mapping atomic number -> E0 [eV], with how well the data determined it.

    :ivar rank: rank of the composition matrix.
    :ivar degenerate: atomic numbers whose E0 the compositions do not fix separately (empty when all are fixed).
    :ivar prior: the energy per atom [eV] the undetermined directions were set to.
    :ivar n_frames: frames with an energy label used in the fit.
    """

    def __init__(self, energies, rank: int, degenerate: Sequence[int], prior: float, n_frames: int):
        super().__init__(energies)
        self.rank, self.degenerate, self.prior, self.n_frames = rank, tuple(degenerate), prior, n_frames

    @property
    def energies(self) -> dict[int, float]:
        """A plain dict copy."""
        return dict(self)

    def describe(self) -> str:
        """One line for the training log (a warning when :attr:`degenerate` is not empty)."""
        values = ', '.join(f'{chemical_symbols[z]} {e:.4g}' for z, e in self.items())
        if self.n_frames == 0:
            return 'reference energies: no frame has an energy label; E0 = 0'
        if not self.degenerate:
            return f'reference energies (least squares over {self.n_frames} frames, eV): {values}'
        names = [chemical_symbols[z] for z in self.degenerate]
        return (
            f'reference energies: the training compositions do not determine E0 of {names} separately '
            f'(composition matrix rank {self.rank} < {len(self)} species); only their combinations seen in the data '
            f'are fitted, and the rest is split evenly at the mean energy per atom ({self.prior:.4g} eV). '
            f'E0 (eV): {values}. Add frames of other compositions (or isolated atoms) to separate them.'
        )


def fit_reference_energies(dataset: StructureDataset, species: Sequence[int]) -> ReferenceEnergyFit:
    """Fit E0 per species (see the module docstring); frames without an energy label are ignored.

    :param dataset: labelled structures (anything with ``.samples``).
    :param species: atomic numbers to fit (columns of the composition matrix).
    :return: mapping atomic number -> E0 [eV] (all zeros if no frame has an energy), with the fit's diagnostics.
    :raises ValueError: if a frame holds a species not in ``species``.
    """
    species = [int(z) for z in species]
    column = {z: c for c, z in enumerate(species)}
    rows, energies = [], []
    for i, s in enumerate(dataset.samples):
        if K.ENERGY not in s:
            continue
        counts = np.zeros(len(species))
        for z in s[K.ATOMIC_NUMBERS]:
            if int(z) not in column:
                raise ValueError(f'structure {i}: species {int(z)} not in {species}')
            counts[column[int(z)]] += 1
        rows.append(counts)
        energies.append(float(s[K.ENERGY]))
    if not rows:
        return ReferenceEnergyFit(dict.fromkeys(species, 0.0), 0, species, 0.0, 0)
    a, e = np.array(rows), np.array(energies)
    prior = float(e.sum() / a.sum())
    p = np.full(len(species), prior)
    solution = p + np.linalg.lstsq(a, e - a @ p, rcond=None)[0]
    # species with a component in the null space of A are not fixed by the data
    _, singular, vt = np.linalg.svd(a)
    tolerance = max(a.shape) * np.finfo(float).eps * (singular[0] if singular.size else 0.0)
    rank = int((singular > tolerance).sum())
    null = vt[rank:]
    degenerate = [z for c, z in enumerate(species) if null.size and np.abs(null[:, c]).max() > 1e-8]
    return ReferenceEnergyFit(
        {z: float(v) for z, v in zip(species, solution, strict=True)}, rank, degenerate, prior, len(rows)
    )
