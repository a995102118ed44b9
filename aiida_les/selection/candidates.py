"""Pick the structures to label from an exploration pool: trust window, charge disagreement, diversity, budget."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """Outcome of :func:`select_candidates`.

    :param selected: indices into the pool, in the order picked.
    :param counts: how many frames fell in each class: ``accurate`` (below the lower trust level and no charge
        signal), ``candidate``, ``failed`` (above the upper trust level: likely unphysical), ``fallback`` (accurate
        frames taken anyway, see ``fallback`` of :func:`select_candidates`), ``duplicate`` (too close to the dataset
        or to an already selected frame), ``selected``.
    """

    selected: list[int]
    counts: dict[str, int]

    @property
    def accurate_fraction(self) -> float:
        """Fraction of the pool that the committee already describes well (the DP-GEN convergence measure)."""
        total = sum(self.counts[key] for key in ('accurate', 'candidate', 'failed'))
        return self.counts['accurate'] / total if total else 0.0


def farthest_point_sampling(
    points: np.ndarray, n_select: int, reference: np.ndarray | None = None, start: int | None = None
) -> list[int]:
    """Greedy farthest-point sampling in descriptor space.

    :param points: ``(n, d)`` descriptors of the candidates.
    :param n_select: how many to pick (at most ``n``).
    :param reference: ``(m, d)`` descriptors already covered (e.g. the dataset); picks maximise the distance to them.
    :param start: first index when there is no reference; defaults to the candidate farthest from the mean.
    :returns: indices into ``points``.
    """
    n_select = min(n_select, len(points))
    if n_select <= 0:
        return []
    if reference is not None and len(reference):
        nearest = _min_distance(points, reference)
        chosen: list[int] = []
    else:
        first = int(np.argmax(np.linalg.norm(points - points.mean(axis=0), axis=1))) if start is None else start
        chosen = [first]
        nearest = np.linalg.norm(points - points[first], axis=1)
    while len(chosen) < n_select:
        nearest[chosen] = -np.inf
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[pick], axis=1))
    return chosen


def select_candidates(
    force_std: np.ndarray,
    descriptors: np.ndarray,
    lower: float,
    upper: float,
    budget: int,
    charge_std: np.ndarray | None = None,
    charge_threshold: float | None = None,
    dataset_descriptors: np.ndarray | None = None,
    duplicate_tolerance: float = 1e-3,
    fallback: bool = False,
) -> SelectionResult:
    """Select frames to label under a budget.

    A frame is a candidate when its committee force deviation (max over atoms, eV/Å) lies in ``[lower, upper)``, or
    when it is below ``lower`` but the committee disagrees on its latent charges (``charge_std >= charge_threshold``,
    e): long-range physics the forces do not see yet. Frames at or above ``upper`` are counted as failed (the model is
    lost there, the geometry is likely unphysical). Candidates closer than ``duplicate_tolerance`` (descriptor
    distance) to the dataset or to each other are dropped; farthest-point sampling picks up to ``budget`` of the rest.

    :param force_std: ``(n,)`` max-over-atoms force standard deviation per frame, eV/Å.
    :param descriptors: ``(n, d)`` structure descriptors of the pool.
    :param charge_std: ``(n,)`` max-over-atoms latent-charge standard deviation per frame, e.
    :param dataset_descriptors: ``(m, d)`` descriptors of the labelled dataset.
    :param fallback: when no frame is a candidate, take the more uncertain half of the frames below ``upper``
        instead (counted as ``fallback``). For a committee known to be overconfident (held-out error above target
        while everything looks accurate), so that a generation still adds information.
    """
    force_std = np.asarray(force_std, dtype=float)
    descriptors = np.asarray(descriptors, dtype=float)
    if not 0 <= lower < upper:
        raise ValueError(f'Trust levels must satisfy 0 <= lower < upper, got lower={lower}, upper={upper}.')
    if descriptors.shape[0] != force_std.shape[0]:
        raise ValueError(
            f'Expected one descriptor per frame: {force_std.shape[0]} frames, {descriptors.shape[0]} rows.'
        )
    if budget < 0:
        raise ValueError(f'The label budget must be >= 0, got {budget}.')
    if not np.all(np.isfinite(force_std)):
        raise ValueError('Force deviations must be finite; drop frames from unstable MD before selection.')

    in_window = (force_std >= lower) & (force_std < upper)
    charge_signal = np.zeros_like(in_window)
    if charge_std is not None and charge_threshold is not None:
        charge_signal = (np.asarray(charge_std, dtype=float) >= charge_threshold) & (force_std < lower)
    failed = force_std >= upper
    is_candidate = in_window | charge_signal
    counts = {
        'accurate': int(np.sum(~is_candidate & ~failed)),
        'candidate': int(np.sum(is_candidate)),
        'failed': int(np.sum(failed)),
        'fallback': 0,
    }
    if fallback and not np.any(is_candidate) and np.any(~failed):
        is_candidate = ~failed & (force_std >= np.median(force_std[~failed]))
        counts['fallback'] = int(np.sum(is_candidate))

    pool = np.flatnonzero(is_candidate)
    unique: list[int] = []
    for index in pool:
        seen = [descriptors[i] for i in unique]
        if dataset_descriptors is not None and len(dataset_descriptors):
            seen.extend(dataset_descriptors)
        if seen and _min_distance(descriptors[index : index + 1], np.asarray(seen))[0] < duplicate_tolerance:
            continue
        unique.append(int(index))
    counts['duplicate'] = len(pool) - len(unique)

    order = farthest_point_sampling(descriptors[unique], budget, reference=dataset_descriptors) if unique else []
    selected = [unique[i] for i in order]
    counts['selected'] = len(selected)
    return SelectionResult(selected=selected, counts=counts)


def _min_distance(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance of each row of ``points`` to its nearest row of ``reference``."""
    difference = points[:, None, :] - reference[None, :, :]
    return np.sqrt(np.min(np.sum(difference**2, axis=-1), axis=1))
