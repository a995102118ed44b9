"""Calcfunctions of ``les.phonons``: phonopy displacements as a dataset, and phonons from the model's predictions.

Parameters (the workchain's ``parameters`` Dict; units Å, THz):

- ``supercell_matrix``: int n, three ints or a 3x3 int matrix of the unit cell (default 2);
- ``primitive_matrix``: ``'auto'`` (default), None (the unit cell) or a 3x3 matrix (phonopy convention);
- ``displacement``: finite displacement in Å (default 0.01);
- ``eps_inf``: high-frequency dielectric constant, scalar or 3x3; with it the NAC uses the model's Born charges
  (``les_bec`` of the unit-cell frame); without it there is no non-analytic correction;
- ``scale_bec_by_eps_inf``: divide the model's Born charges by ``sqrt(eps_inf)`` (latent charges of an
  energy/force-only model; default False);
- ``q_direction``: direction of approach to Gamma for the LO modes, reduced coordinates (default [1, 0, 0]);
- ``band_npoints``: q-points per band segment (default 51; 0 = no band structure);
- ``dos_mesh``: q-mesh of the DOS (default 20; None = no DOS).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.dataset import LesDatasetData
from les_model.applications.phonons.compute import THZ_TO_CM, create_phonopy, displaced_supercells, phonopy_to_atoms
from les_model.applications.phonons.run import run_phonons
from les_model.electrostatics.polarization import acoustic_sum_rule_violation as asr_violation

__all__ = ('DEFAULT_PARAMETERS', 'compute_phonons', 'generate_phonon_dataset', 'validate_parameters')

DEFAULT_PARAMETERS = {
    'supercell_matrix': 2,
    'primitive_matrix': 'auto',
    'displacement': 0.01,
    'eps_inf': None,
    'scale_bec_by_eps_inf': False,
    'q_direction': [1.0, 0.0, 0.0],
    'band_npoints': 51,
    'dos_mesh': 20,
}

#: ``atoms.info`` key naming each frame's role: ``unitcell``, ``supercell`` or ``displacement``.
ROLE = 'phonon_role'
#: output name -> file kind of :func:`les_model.applications.phonons.run.run_phonons`.
FILE_OUTPUTS = {
    'phonopy_params': 'params',
    'force_sets': 'force_sets',
    'born': 'born',
    'band_yaml': 'band',
    'total_dos': 'dos',
    'band_structure_png': 'band_png',
    'dos_png': 'dos_png',
}


def validate_parameters(value, _ctx=None) -> str | None:
    """Return an error message for unknown keys or invalid values of the ``parameters`` Dict, or None."""
    params = value.get_dict() if isinstance(value, orm.Dict) else dict(value)
    unknown = sorted(set(params) - set(DEFAULT_PARAMETERS))
    if unknown:
        return f'parameters: unknown keys {unknown}; expected some of {sorted(DEFAULT_PARAMETERS)}'
    params = {**DEFAULT_PARAMETERS, **params}
    if not float(params['displacement']) > 0:
        return f'parameters: displacement must be > 0 Å, got {params["displacement"]}'
    matrix = np.asarray(params['supercell_matrix'])
    if matrix.shape not in ((), (3,), (3, 3)) or not np.issubdtype(matrix.dtype, np.integer):
        return f'parameters: supercell_matrix must be an int, 3 ints or a 3x3 int matrix, got {matrix.tolist()}'
    eps = params['eps_inf']
    if eps is not None:
        eps = np.asarray(eps, dtype=float)
        if eps.shape not in ((), (3, 3)) or not np.all(np.linalg.eigvalsh(np.atleast_2d(eps)) > 0):
            return f'parameters: eps_inf must be a positive number or a positive-definite 3x3 matrix, got {eps}'
    elif params['scale_bec_by_eps_inf']:
        return 'parameters: scale_bec_by_eps_inf needs eps_inf'
    return None


def _settings(parameters: orm.Dict) -> dict:
    return {**DEFAULT_PARAMETERS, **parameters.get_dict()}


def _phonopy(structure: orm.StructureData, settings: dict):
    return create_phonopy(
        structure.get_ase(), settings['supercell_matrix'], settings['primitive_matrix'], settings['displacement']
    )


@calcfunction
def generate_phonon_dataset(structure: orm.StructureData, parameters: orm.Dict) -> LesDatasetData:
    """Frames to evaluate: the unit cell (for Born charges), the perfect supercell (residual forces) and phonopy's
    displaced supercells, in that order (``atoms.info['phonon_role']``).
    """
    settings = _settings(parameters)
    unitcell = structure.get_ase()
    phonon = _phonopy(structure, settings)
    frames = [unitcell.copy()]
    frames[0].info[ROLE] = 'unitcell'
    perfect = phonopy_to_atoms(phonon.supercell)
    perfect.info[ROLE] = 'supercell'
    frames.append(perfect)
    for index, atoms in enumerate(displaced_supercells(phonon)):
        atoms.info[ROLE] = 'displacement'
        atoms.info['phonon_displacement_index'] = index
        frames.append(atoms)
    return LesDatasetData.from_ase(frames, filename='phonon_displacements.extxyz')


@calcfunction
def compute_phonons(structure: orm.StructureData, parameters: orm.Dict, predictions: LesDatasetData) -> dict:
    """Force constants, Gamma frequencies (with the NAC when ``eps_inf`` is set), band structure and DOS from the
    model's predictions of the dataset of :func:`generate_phonon_dataset`.

    :return: ``gamma_frequencies`` (Dict) and the phonopy files and PNG plots (SinglefileData).
    """
    settings = _settings(parameters)
    atoms = structure.get_ase()
    phonon = _phonopy(structure, settings)
    frames = predictions.get_ase()
    expected = displaced_supercells(phonon)
    if len(frames) != len(expected) + 2:
        raise ValueError(f'predictions hold {len(frames)} frames, expected {len(expected) + 2} (unit cell, supercell, '
                         'displacements)')  # fmt: skip
    for frame, reference in zip(frames[2:], expected, strict=True):
        if not np.allclose(frame.positions, reference.positions, atol=1e-6):
            raise ValueError('the predicted frames are not the phonopy displacements of these parameters')
    if any('les_forces' not in frame.arrays for frame in frames):
        raise ValueError('the predictions lack `les_forces` arrays')
    residual = frames[1].arrays['les_forces']
    force_sets = np.array([frame.arrays['les_forces'] - residual for frame in frames[2:]])

    born, raw_violation = None, None
    eps = settings['eps_inf']
    if eps is not None:
        if 'les_bec' not in frames[0].arrays:
            raise ValueError('eps_inf is set but the unit-cell prediction has no `les_bec` (run with compute_bec)')
        born = np.asarray(frames[0].arrays['les_bec'], dtype=float).reshape(len(atoms), 3, 3)
        raw_violation = asr_violation(born)
        if settings['scale_bec_by_eps_inf']:
            eps_array = np.asarray(eps, dtype=float)
            scalar = float(eps_array) if eps_array.ndim == 0 else float(np.trace(eps_array)) / 3.0
            born = born / np.sqrt(scalar)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_phonons(
            atoms,
            force_sets=force_sets,
            supercell_matrix=settings['supercell_matrix'],
            primitive_matrix=settings['primitive_matrix'],
            displacement=settings['displacement'],
            born=born,
            eps_inf=eps,
            q_direction=settings['q_direction'],
            band_npoints=int(settings['band_npoints'] or 0),
            dos_mesh=settings['dos_mesh'],
            output_dir=tmp,
        )
        outputs = {
            name: orm.SinglefileData(Path(result.files[kind]), filename=Path(result.files[kind]).name)
            for name, kind in FILE_OUTPUTS.items()
            if kind in result.files
        }
    summary = {
        'frequencies_thz': result.gamma.tolist(),
        'frequencies_cm': (result.gamma * THZ_TO_CM).tolist(),
        'frequencies_without_nac_thz': result.gamma_analytic.tolist(),
        'q_direction': list(settings['q_direction']),
        'nac': result.nac is not None,
        'units': {'frequencies': 'THz (cm^-1 for frequencies_cm)', 'born_charges': 'e'},
    }
    if result.nac is not None:
        summary['born_charges'] = np.asarray(result.nac['born']).tolist()
        summary['eps_inf'] = np.asarray(result.nac['dielectric']).tolist()
        summary['asr_violation_raw'] = raw_violation
        summary['asr_violation'] = asr_violation(result.nac['born'])
    outputs['gamma_frequencies'] = orm.Dict(summary)
    return outputs
