"""select_structures: pick the frames to label from explored candidates, recorded in the provenance graph.

A calcfunction around :func:`aiida_les.selection.select_candidates` (trust window on the committee force deviation,
charge disagreement, deduplication against the dataset, farthest-point sampling under the budget) with the
descriptors of :func:`aiida_les.selection.structure_descriptor`. The candidates are any number of MD trajectories
(``les.md``) or prediction datasets (``les.evaluate``), pooled in natural order of their link labels. Each selected
frame records its origin (:mod:`aiida_les.provenance.origin`): the candidate's UUID, the frame index and MD step, plus
what the caller adds per candidate in ``origins`` (generation, temperature, seed label).
"""

from __future__ import annotations

import math
import re

import ase
import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData
from aiida_les.provenance import origin as o
from aiida_les.selection import select_candidates, structure_descriptor
from aiida_les.utils.conversion import trajectory_to_ase

__all__ = ('DEFAULT_PARAMETERS', 'select_structures')

#: Selection settings; units: eV/Å for the trust levels, e for ``charge_threshold``, Å for the descriptor.
#: ``force_std_scale`` (dimensionless, > 0): the calibration factor of the committee's force deviation
#: (:mod:`les_model.calibration`); ``trust_lower`` is compared with ``force_std_scale * uncertainty``, the expected
#: force error in eV/Å, so "accurate" means accurate for an overconfident committee too. ``trust_upper`` stays a bound
#: on the raw deviation (as the MD stop ``max_force_std`` is): it filters frames where the committee itself went wild,
#: which an overconfident committee's large calibrated errors must not exclude. 1 = uncalibrated.
DEFAULT_PARAMETERS = {
    'trust_lower': 0.05,
    'trust_upper': 0.5,
    'budget': 10,
    'charge_threshold': None,
    'uncertainty_key': 'max_force_std',
    'charge_key': 'max_charge_std',
    'duplicate_tolerance': 1.0e-3,
    'cutoff': 5.0,
    'n_bins': 24,
    'width': 0.25,
    'fallback': False,
    'force_std_scale': 1.0,
    'origins': {},
}

#: Origin entries a caller may add per candidate (``origins``: candidate link label -> {key: value}).
CALLER_ORIGIN_KEYS = (o.GENERATION, o.TEMPERATURE, o.SEED)


def _natural_key(label: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', label)]


def _value(atoms: ase.Atoms, key: str) -> float:
    """Return ``atoms.info[key]`` (or the ``les_``-prefixed entry ``les-eval`` writes) as a float, NaN if absent."""
    for name in (key, f'les_{key}'):
        if name in atoms.info:
            return float(atoms.info[name])
    return math.nan


def _frames_of(label: str, node, extra: dict) -> list[ase.Atoms]:
    """Return the frames of candidate ``node``, each with its origin in ``info`` (a dataset's own origin wins)."""
    if isinstance(node, orm.TrajectoryData):
        frames = trajectory_to_ase(node)
        steps = node.get_stepids()
        for index, atoms in enumerate(frames):
            atoms.info.update({o.ORIGIN: 'md', o.ORIGIN_UUID: node.uuid, o.ORIGIN_INDEX: index}, **extra)
            atoms.info[o.MD_STEP] = int(steps[index])
        return frames
    if isinstance(node, LesDatasetData):
        frames = node.get_ase()
        for index, atoms in enumerate(frames):
            if o.ORIGIN not in atoms.info:
                atoms.info.update({o.ORIGIN: 'dataset', o.ORIGIN_UUID: node.uuid, o.ORIGIN_INDEX: index}, **extra)
        return frames
    raise TypeError(f'candidate `{label}` must be a TrajectoryData or LesDatasetData, got {type(node).__name__}.')


def _clean_frame(atoms: ase.Atoms, source: str, index: int, uncertainty: float) -> ase.Atoms:
    """Return the frame without predictions: numbers, positions, cell, pbc, charge/spin and where it came from."""
    clean = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    clean.info.update(source=source, source_index=index, selection_force_std=uncertainty)
    clean.info.update(o.origin_of(atoms.info))
    # Trajectory arrays come back as floats; the labellers take integers.
    for key in ('total_charge', 'spin_multiplicity'):
        if key in atoms.info:
            clean.info[key] = int(round(float(atoms.info[key])))
    return clean


def _check_origins(origins, candidates) -> None:
    if not isinstance(origins, dict):
        raise TypeError(f'select_structures: `origins` must be a dict (candidate -> entries), got {origins!r}.')
    for label, extra in origins.items():
        if label not in candidates:
            raise ValueError(f'select_structures: `origins` names `{label}`, which is not a candidate.')
        unknown = sorted(set(extra) - set(CALLER_ORIGIN_KEYS))
        if unknown:
            raise ValueError(
                f'select_structures: unknown origin keys {unknown} for `{label}`; allowed are '
                f'{list(CALLER_ORIGIN_KEYS)}.'
            )


@calcfunction
def select_structures(parameters: orm.Dict, reference: LesDatasetData | None = None, **candidates):
    """Select frames of ``candidates`` to label.

    :param parameters: overrides of :data:`DEFAULT_PARAMETERS`; ``budget`` may be 0 (nothing is selected);
        ``origins`` maps a candidate's link label to origin entries (:data:`CALLER_ORIGIN_KEYS`) for its frames.
    :param reference: the labelled dataset; candidates too close to it are duplicates.
    :param candidates: TrajectoryData or LesDatasetData nodes carrying the per-frame committee uncertainty
        ``uncertainty_key`` [eV/Å] (and ``charge_key`` [e] when ``charge_threshold`` is set).
    :return: ``report`` (Dict: ``n_frames``, ``accurate_fraction``, ``counts`` per class, the selected frames'
        sources, uncertainties and expected errors ``force_std_scale * uncertainty`` [eV/Å]) and, when any frame
        was selected, ``selected`` (LesDatasetData, unlabelled).
    :raises ValueError: for unknown parameters, inconsistent trust levels or no candidates.
    """
    unknown = sorted(set(parameters.get_dict()) - set(DEFAULT_PARAMETERS))
    if unknown:
        raise ValueError(f'select_structures: unknown parameters {unknown}; allowed are {sorted(DEFAULT_PARAMETERS)}.')
    if not candidates:
        raise ValueError('select_structures needs at least one candidate trajectory or dataset, got none.')
    p = {**DEFAULT_PARAMETERS, **parameters.get_dict()}
    _check_origins(p['origins'], candidates)
    scale = p['force_std_scale']
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f'select_structures: force_std_scale must be a finite number > 0, got {scale!r}.')

    pool, sources = [], []
    for label in sorted(candidates, key=_natural_key):
        for index, atoms in enumerate(_frames_of(label, candidates[label], p['origins'].get(label, {}))):
            pool.append(atoms)
            sources.append((label, index))
    force_std = np.array([_value(atoms, p['uncertainty_key']) for atoms in pool])
    expected_error = float(scale) * force_std
    charge_std = np.array([_value(atoms, p['charge_key']) for atoms in pool])
    finite = np.isfinite(force_std)  # frames without an uncertainty (or a NaN one) cannot be judged: failed
    kept = np.flatnonzero(finite)

    reference_frames = reference.get_ase() if reference is not None else []
    species = sorted({s for atoms in pool + reference_frames for s in atoms.get_chemical_symbols()})

    def describe(frames):
        if not frames:
            return np.zeros((0, 0))
        return np.array([structure_descriptor(a, species, p['cutoff'], p['n_bins'], p['width']) for a in frames])

    charge_threshold = p['charge_threshold']
    lower, upper = p['trust_lower'], p['trust_upper']
    if not 0 <= lower < upper:
        raise ValueError(f'Trust levels must satisfy 0 <= lower < upper, got lower={lower}, upper={upper}.')
    upper = max(float(scale) * upper, float(np.nextafter(lower, np.inf)))
    result = select_candidates(
        expected_error[kept],
        describe([pool[i] for i in kept]),
        lower=p['trust_lower'],
        # trust_upper bounds the raw deviation: sigma > upper  <=>  scale * sigma > scale * upper.
        upper=upper,
        budget=int(p['budget']),
        charge_std=np.nan_to_num(charge_std[kept], nan=0.0) if charge_threshold is not None else None,
        charge_threshold=charge_threshold,
        dataset_descriptors=describe(reference_frames) if reference_frames else None,
        duplicate_tolerance=p['duplicate_tolerance'],
        fallback=bool(p['fallback']),
    )
    counts = dict(result.counts)
    counts['failed'] += int(np.sum(~finite))
    selected = [int(kept[i]) for i in result.selected]
    judged = counts['accurate'] + counts['candidate'] + counts['failed']
    report = {
        'n_frames': len(pool),
        'accurate_fraction': counts['accurate'] / judged if judged else 0.0,
        'counts': counts,
        'selected_sources': [list(sources[i]) for i in selected],
        'selected_force_std': [float(force_std[i]) for i in selected],
        'selected_expected_force_error': [float(expected_error[i]) for i in selected],
        'parameters': p,
    }
    outputs = {'report': orm.Dict(report)}
    if selected:
        frames = [_clean_frame(pool[i], *sources[i], float(force_std[i])) for i in selected]
        outputs['selected'] = LesDatasetData.from_ase(frames, filename='selected.extxyz')
    return outputs
