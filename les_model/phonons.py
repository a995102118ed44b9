"""Harmonic phonons with phonopy: finite displacements evaluated by any ASE calculator (or given force sets), force
constants, Gamma frequencies, band structure and DOS, with the non-analytic correction (NAC) from Born effective
charges and a high-frequency dielectric tensor, so that the LO-TO splitting appears.

Units: forces in eV/Å, force constants in eV/Å^2, masses in amu, frequencies in THz (``1 THz = 33.35641 cm^-1``),
Born effective charges in e, the NAC factor in eV Å / e^2 (the Coulomb constant
:math:`k_e = 1 / (4 \\pi \\varepsilon_0) = 14.399645`). Near :math:`q \\to 0` along :math:`\\hat q` the NAC adds to the
dynamical matrix

.. math::

    D^{na}_{i a, j b} = \\frac{4 \\pi k_e}{V \\sqrt{m_i m_j}}
        \\frac{(\\hat q \\cdot Z^*_i)_a (\\hat q \\cdot Z^*_j)_b}{\\hat q \\cdot \\varepsilon_\\infty \\hat q},

which for a rigid-ion rock-salt crystal gives :math:`\\omega_{LO}^2 - \\omega_{TO}^2 = 4 \\pi k_e Z^2 /
(\\varepsilon_\\infty V \\mu)` (:math:`\\mu` the reduced mass).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np
import torch
from phonopy import Phonopy
from phonopy.file_IO import write_BORN, write_FORCE_SETS
from phonopy.phonon.band_structure import get_band_qpoints_and_path_connections
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

from les_model.nn.response import acoustic_sum_rule_violation, enforce_acoustic_sum_rule
from les_model.phonon_plots import plot_band_structure, plot_dos
from les_model.units import COULOMB_CONSTANT

__all__ = [
    'THZ_TO_CM',
    'PhononResult',
    'asr_violation',
    'atoms_to_phonopy',
    'band_structure',
    'born_charges_from_calculator',
    'compute_force_sets',
    'create_phonopy',
    'density_of_states',
    'displaced_supercells',
    'gamma_frequencies',
    'nac_parameters',
    'phonopy_to_atoms',
    'plot_band_structure',
    'plot_dos',
    'run_phonons',
    'set_force_sets',
    'unitcell_born_from_primitive',
    'write_phonopy_files',
]

#: Conversion from THz to cm^-1.
THZ_TO_CM: float = 33.35640951981521


def atoms_to_phonopy(atoms: ase.Atoms) -> PhonopyAtoms:
    """Convert an :class:`ase.Atoms` (masses in amu) to :class:`PhonopyAtoms`."""
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.cell.array, dtype=float),
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def phonopy_to_atoms(cell: PhonopyAtoms) -> ase.Atoms:
    """Convert :class:`PhonopyAtoms` to a periodic :class:`ase.Atoms` with the same masses."""
    atoms = ase.Atoms(cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)
    atoms.set_masses(cell.masses)
    return atoms


def create_phonopy(
    atoms: ase.Atoms,
    supercell_matrix: int | Sequence[int] | Sequence[Sequence[int]] = 2,
    primitive_matrix: str | Sequence[Sequence[float]] | None = 'auto',
    displacement: float = 0.01,
    plus_minus: bool | str = 'auto',
    symprec: float = 1e-5,
) -> Phonopy:
    """Set up a :class:`Phonopy` object with its supercell displacements.

    :param atoms: unit cell (3D periodic).
    :param supercell_matrix: supercell of the unit cell: an integer n (n x n x n), three integers or a 3x3 matrix.
    :param primitive_matrix: primitive cell w.r.t. the unit cell (phonopy convention: ``'auto'`` detects it from
        the symmetry, None = the unit cell itself).
    :param displacement: displacement amplitude in Å.
    :param plus_minus: displace in both directions (``'auto'``: only where symmetry does not relate them).
    :param symprec: symmetry tolerance in Å.
    :return: the phonopy object (``supercells_with_displacements`` is set).
    """
    if not all(atoms.pbc):
        raise ValueError(f'phonons need a 3D-periodic cell, got pbc={atoms.pbc.tolist()}')
    if not displacement > 0:
        raise ValueError(f'displacement must be > 0 Å, got {displacement}')
    matrix = np.asarray(supercell_matrix, dtype=int)
    if matrix.ndim == 0:
        matrix = np.eye(3, dtype=int) * int(matrix)
    elif matrix.shape == (3,):
        matrix = np.diag(matrix)
    if matrix.shape != (3, 3) or round(abs(np.linalg.det(matrix))) < 1:
        raise ValueError(
            f'supercell_matrix must be an int, 3 ints or a non-singular 3x3 matrix, got {supercell_matrix}'
        )
    with warnings.catch_warnings():  # 'auto' is this function's explicit, documented choice
        warnings.filterwarnings('ignore', message='primitive_matrix defaulted')
        phonon = Phonopy(
            atoms_to_phonopy(atoms),
            supercell_matrix=matrix,
            primitive_matrix='P' if primitive_matrix is None else primitive_matrix,
            symprec=symprec,
        )
    phonon.generate_displacements(distance=displacement, is_plusminus=plus_minus)
    return phonon


def displaced_supercells(phonon: Phonopy) -> list[ase.Atoms]:
    """The displaced supercells as :class:`ase.Atoms`, in phonopy's dataset order."""
    return [phonopy_to_atoms(cell) for cell in phonon.supercells_with_displacements]


def compute_force_sets(phonon: Phonopy, calculator, subtract_residual: bool = True) -> np.ndarray:
    """Evaluate the forces on every displaced supercell with an ASE calculator.

    :param phonon: from :func:`create_phonopy`.
    :param calculator: any ASE calculator giving forces in eV/Å.
    :param subtract_residual: subtract the forces of the undisplaced supercell (removes the effect of a structure
        that is not exactly at the calculator's equilibrium).
    :return: (n_displacements, n_supercell_atoms, 3) forces in eV/Å.
    """

    def forces(atoms):
        atoms.calc = calculator
        return np.array(atoms.get_forces(), dtype=float)

    sets = np.array([forces(atoms) for atoms in displaced_supercells(phonon)])
    if subtract_residual:
        sets -= forces(phonopy_to_atoms(phonon.supercell))[None]
    return sets


def set_force_sets(phonon: Phonopy, force_sets: np.ndarray) -> None:
    """Attach force sets and compute the force constants.

    :param force_sets: (n_displacements, n_supercell_atoms, 3) forces in eV/Å in phonopy's dataset order.
    """
    force_sets = np.asarray(force_sets, dtype=float)
    expected = (len(phonon.displacements), len(phonon.supercell), 3)
    if force_sets.shape != expected:
        raise ValueError(f'force_sets must have shape {expected}, got {force_sets.shape}')
    phonon.forces = force_sets
    phonon.produce_force_constants(show_drift=False)
    phonon.symmetrize_force_constants()


def born_charges_from_calculator(
    atoms: ase.Atoms,
    calculator,
    eps_inf: float | None = None,
    scale_by_eps_inf: bool = False,
    enforce_asr: bool = True,
) -> np.ndarray:
    """Born effective charges of the unit cell predicted by a calculator that gives ``'bec'`` (e.g. LesCalculator).

    :param atoms: unit cell.
    :param calculator: ASE calculator with ``'bec'`` in its results, (N, 3, 3) ``Z[i, a, b] = d mu_a / d r_ib``.
    :param eps_inf: scalar high-frequency dielectric constant (only used with ``scale_by_eps_inf``).
    :param scale_by_eps_inf: divide by ``sqrt(eps_inf)``: latent charges learned from energies and forces alone are
        screened point charges; this turns their BEC into an estimate of the physical Z*.
    :param enforce_asr: subtract the mean so that ``sum_i Z*_i = 0``.
    :return: (N, 3, 3) Born effective charges in e.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    calculator.calculate(atoms, properties=['energy', 'forces', 'bec'])
    born = np.array(calculator.results['bec'], dtype=float).reshape(len(atoms), 3, 3)
    if scale_by_eps_inf:
        if eps_inf is None or not eps_inf > 0:
            raise ValueError(f'scale_by_eps_inf needs eps_inf > 0, got {eps_inf}')
        born /= np.sqrt(eps_inf)
    if enforce_asr:
        tensor = torch.as_tensor(born)
        batch = torch.zeros(len(atoms), dtype=torch.int64)
        born = enforce_acoustic_sum_rule(tensor, batch, 1).numpy()
    return born


def _dielectric(eps_inf) -> np.ndarray:
    eps = np.asarray(eps_inf, dtype=float)
    if eps.ndim == 0:
        eps = np.eye(3) * float(eps)
    if eps.shape != (3, 3) or not np.all(np.linalg.eigvalsh(0.5 * (eps + eps.T)) > 0):
        raise ValueError(f'eps_inf must be a positive scalar or a positive-definite 3x3 tensor, got {eps_inf}')
    return eps


def nac_parameters(
    phonon: Phonopy,
    born: np.ndarray,
    eps_inf,
    factor: float = COULOMB_CONSTANT,
    enforce_asr: bool = True,
    symmetrize: bool = True,
    asr_tolerance: float = 1e-3,
) -> dict:
    """Non-analytic-correction parameters for phonopy from unit-cell Born charges, and attach them.

    :param phonon: from :func:`create_phonopy`.
    :param born: (N_unitcell, 3, 3) Born effective charges in e of the unit cell given to :func:`create_phonopy`.
    :param eps_inf: high-frequency dielectric constant, scalar or (3, 3).
    :param factor: unit factor ``k_e`` in eV Å / e^2.
    :param enforce_asr: enforce the acoustic sum rule (per-cell mean removed) before symmetrising.
    :param symmetrize: symmetrise Z* and eps_inf with the crystal's site symmetries (phonopy).
    :param asr_tolerance: largest allowed ``|sum_i Z*_i|`` (e) of the result when ``enforce_asr``.
    :return: ``{'born': (N_primitive, 3, 3), 'dielectric': (3, 3), 'factor': float}`` (also set on ``phonon``).
    """
    n_unit = len(phonon.unitcell)
    born = np.asarray(born, dtype=float)
    if born.shape != (n_unit, 3, 3):
        raise ValueError(f'born must have shape ({n_unit}, 3, 3) (unit cell), got {born.shape}')
    eps = _dielectric(eps_inf)
    batch = torch.zeros(n_unit, dtype=torch.int64)
    if enforce_asr:
        born = enforce_acoustic_sum_rule(torch.as_tensor(born), batch, 1).numpy()
    if symmetrize:
        born_p, eps = symmetrize_borns_and_epsilon(
            born,
            eps,
            phonon.unitcell,
            primitive_matrix=phonon.primitive_matrix,
            supercell_matrix=phonon.supercell_matrix,
            symprec=phonon.symmetry.tolerance,
        )
    else:
        # atoms of the primitive cell are the first images of unit-cell atoms in the supercell
        born_p = born[phonon.supercell.u2u_map[phonon.primitive.p2s_map]]
    if enforce_asr:
        violation = float(np.abs(born_p.sum(axis=0)).max())
        if violation > asr_tolerance:
            raise ValueError(f'acoustic sum rule violated by {violation:.3g} e after enforcement (> {asr_tolerance})')
    params = {'born': np.asarray(born_p), 'dielectric': np.asarray(eps), 'factor': float(factor)}
    phonon.nac_params = params
    return params


def asr_violation(born: np.ndarray) -> float:
    """Largest component of ``|sum_i Z*_i|`` in e for (N, 3, 3) Born charges."""
    tensor = torch.as_tensor(np.asarray(born, dtype=float))
    return float(acoustic_sum_rule_violation(tensor, torch.zeros(len(tensor), dtype=torch.int64), 1).abs().max())


def gamma_frequencies(phonon: Phonopy, q_direction: Sequence[float] | None = (1.0, 0.0, 0.0)) -> np.ndarray:
    """Frequencies at Gamma in THz, ascending.

    :param q_direction: direction of approach to Gamma in reduced coordinates of the primitive reciprocal lattice;
        with NAC parameters this selects the LO modes polarised along it. None = the analytic (TO-only) limit.
    :return: (3 N_primitive,) frequencies in THz (imaginary modes negative).
    """
    direction = None if q_direction is None or phonon.nac_params is None else np.asarray(q_direction, dtype=float)
    phonon.run_qpoints([[0.0, 0.0, 0.0]], nac_q_direction=direction)
    return np.sort(np.asarray(phonon.qpoints.frequencies[0]))


def _auto_path(phonon: Phonopy):
    """High-symmetry path of the primitive cell from ase's Bravais-lattice analysis (Setyawan-Curtarolo)."""
    from ase.dft.kpoints import parse_path_string

    bandpath = ase.cell.Cell(phonon.primitive.cell).bandpath(npoints=0)
    points = bandpath.special_points
    segments = parse_path_string(bandpath.path)
    paths = [[points[label] for label in segment] for segment in segments]
    labels = [r'$\Gamma$' if label == 'G' else label for segment in segments for label in segment]
    return paths, labels


def band_structure(phonon: Phonopy, paths=None, labels: Sequence[str] | None = None, npoints: int = 51) -> dict:
    """Phonon band structure (with NAC when set).

    :param paths: list of segments, each a list of q-points in reduced coordinates of the primitive reciprocal
        lattice; default: ase's high-symmetry path of the primitive lattice.
    :param labels: one label per q-point of ``paths`` (required with ``paths``).
    :param npoints: q-points per segment.
    :return: ``{'distances': list of (npoints,) in 1/Å, 'frequencies': list of (npoints, 3N) in THz,
        'qpoints': list of (npoints, 3), 'labels': list[str], 'path_connections': list[bool]}``.
    """
    if paths is None:
        paths, labels = _auto_path(phonon)
    qpoints, connections = get_band_qpoints_and_path_connections(paths, npoints=npoints)
    phonon.run_band_structure(qpoints, path_connections=connections, labels=list(labels) if labels else None)
    bands = phonon.band_structure
    return {
        'distances': [np.asarray(d) for d in bands.distances],
        'frequencies': [np.asarray(f) for f in bands.frequencies],
        'qpoints': [np.asarray(q) for q in bands.qpoints],
        'labels': list(labels or []),
        'path_connections': list(connections),
    }


def density_of_states(
    phonon: Phonopy, mesh: float | Sequence[int] = 20, sigma: float | None = None, freq_pitch: float | None = None
) -> dict:
    """Total phonon DOS on a q-point mesh (tetrahedron method, or Gaussian smearing ``sigma`` in THz).

    :param mesh: three mesh numbers, or one number for all directions.
    :return: ``{'frequencies': (M,) in THz, 'dos': (M,) states per THz per primitive cell}``.
    """
    mesh = [int(mesh)] * 3 if np.ndim(mesh) == 0 else [int(m) for m in mesh]
    phonon.run_mesh(mesh, with_eigenvectors=False, is_gamma_center=True)
    phonon.run_total_dos(sigma=sigma, freq_pitch=freq_pitch, use_tetrahedron_method=sigma is None)
    dos = phonon.total_dos
    return {'frequencies': np.asarray(dos.frequency_points), 'dos': np.asarray(dos.dos)}


def unitcell_born_from_primitive(phonon: Phonopy, born_primitive: np.ndarray) -> np.ndarray:
    """Expand Born charges of the primitive cell to every atom of the unit cell (atoms related by translations).

    :param born_primitive: (N_primitive, 3, 3) Born charges in e.
    :return: (N_unitcell, 3, 3) Born charges in e.
    """
    born_primitive = np.asarray(born_primitive, dtype=float)
    n_prim = len(phonon.primitive)
    if born_primitive.shape != (n_prim, 3, 3):
        raise ValueError(f'born_primitive must have shape ({n_prim}, 3, 3), got {born_primitive.shape}')
    supercell_index = phonon.supercell.u2s_map
    primitive_index = [phonon.primitive.p2p_map[phonon.primitive.s2p_map[s]] for s in supercell_index]
    return born_primitive[primitive_index]


def write_phonopy_files(phonon: Phonopy, directory: str | Path, bands: bool = True, dos: bool = True) -> dict:
    """Write phonopy's files: ``phonopy_params.yaml`` (structure, displacements, forces, force constants, NAC),
    ``FORCE_SETS``, ``BORN`` (when NAC parameters are set), ``band.yaml`` and ``total_dos.dat`` (when computed).

    :return: mapping of file kind (``params``, ``force_sets``, ``born``, ``band``, ``dos``) to path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {'params': directory / 'phonopy_params.yaml', 'force_sets': directory / 'FORCE_SETS'}
    phonon.save(files['params'], settings={'force_constants': True})
    write_FORCE_SETS(phonon.dataset, filename=files['force_sets'])
    if phonon.nac_params is not None:
        files['born'] = directory / 'BORN'
        nac = phonon.nac_params
        write_BORN(phonon.primitive, nac['born'], nac['dielectric'], filename=files['born'])
    if bands and phonon.band_structure is not None:
        files['band'] = directory / 'band.yaml'
        phonon.write_yaml_band_structure(filename=files['band'])
    if dos and phonon.total_dos is not None:
        files['dos'] = directory / 'total_dos.dat'
        phonon.write_total_dos(filename=files['dos'])
    return files


@dataclasses.dataclass
class PhononResult:
    """Everything :func:`run_phonons` computes.

    :ivar phonon: the phonopy object (force constants and NAC parameters set).
    :ivar gamma: (3 N_primitive,) Gamma frequencies in THz, approached along ``q_direction`` (LO-TO split with NAC).
    :ivar gamma_analytic: (3 N_primitive,) Gamma frequencies in THz without the non-analytic term.
    :ivar nac: NAC parameters (``born`` (N_primitive, 3, 3) e, ``dielectric`` (3, 3), ``factor``) or None.
    :ivar bands: from :func:`band_structure`, or None.
    :ivar dos: from :func:`density_of_states`, or None.
    :ivar files: written files (phonopy files and PNG plots) by kind.
    """

    phonon: Phonopy
    gamma: np.ndarray
    gamma_analytic: np.ndarray
    nac: dict | None = None
    bands: dict | None = None
    dos: dict | None = None
    files: dict = dataclasses.field(default_factory=dict)


def run_phonons(
    atoms: ase.Atoms,
    calculator=None,
    force_sets: np.ndarray | dict | None = None,
    supercell_matrix=2,
    primitive_matrix='auto',
    displacement: float = 0.01,
    born: np.ndarray | None = None,
    eps_inf=None,
    born_from_calculator: bool = False,
    scale_by_eps_inf: bool = False,
    nac_factor: float = COULOMB_CONSTANT,
    q_direction: Sequence[float] = (1.0, 0.0, 0.0),
    band_npoints: int = 51,
    dos_mesh: float | Sequence[int] | None = 20,
    output_dir: str | Path | None = None,
) -> PhononResult:
    """Phonons of a crystal from a calculator or given force sets, with the NAC when Born charges are available.

    :param atoms: unit cell.
    :param calculator: ASE calculator for the displaced supercells (and for Born charges with
        ``born_from_calculator``); not needed when ``force_sets`` is given.
    :param force_sets: (n_displacements, n_supercell_atoms, 3) forces in eV/Å in the order of the displacements
        that :func:`create_phonopy` makes with these settings, or a phonopy dataset dict (``natom``,
        ``first_atoms`` with ``number``, ``displacement`` and ``forces``) that replaces those displacements.
    :param born: (N_unitcell, 3, 3) Born charges in e; NAC is applied when given (or computed) with ``eps_inf``.
    :param eps_inf: high-frequency dielectric constant, scalar or (3, 3).
    :param born_from_calculator: compute ``born`` with the calculator (``'bec'`` result, ASR enforced).
    :param scale_by_eps_inf: divide calculator Born charges by ``sqrt(eps_inf)`` (see
        :func:`born_charges_from_calculator`).
    :param nac_factor: Coulomb constant of the NAC in eV Å / e^2.
    :param q_direction: direction (reduced coordinates) along which Gamma is approached for the LO modes.
    :param band_npoints: q-points per band segment (0 = no band structure).
    :param dos_mesh: q-point mesh of the DOS (None = no DOS).
    :param output_dir: write phonopy files and PNG plots there.
    :return: :class:`PhononResult`.
    """
    phonon = create_phonopy(atoms, supercell_matrix, primitive_matrix, displacement)
    if isinstance(force_sets, dict):
        n_super = len(phonon.supercell)
        if int(force_sets.get('natom', -1)) != n_super:
            raise ValueError(f'force-set dataset has natom={force_sets.get("natom")}, the supercell has {n_super}')
        phonon.dataset = force_sets
        phonon.produce_force_constants(show_drift=False)
        phonon.symmetrize_force_constants()
    else:
        if force_sets is None:
            if calculator is None:
                raise ValueError('run_phonons needs a calculator or force_sets, got neither')
            force_sets = compute_force_sets(phonon, calculator)
        set_force_sets(phonon, force_sets)
    gamma_analytic = gamma_frequencies(phonon, None)
    if born_from_calculator:
        if calculator is None:
            raise ValueError('born_from_calculator needs a calculator')
        scalar_eps = None if eps_inf is None else float(np.trace(_dielectric(eps_inf)) / 3.0)
        born = born_charges_from_calculator(atoms, calculator, scalar_eps, scale_by_eps_inf)
    nac = None
    if born is not None:
        if eps_inf is None:
            raise ValueError('the non-analytic correction needs eps_inf together with the Born charges')
        nac = nac_parameters(phonon, born, eps_inf, factor=nac_factor)
    result = PhononResult(phonon, gamma_frequencies(phonon, q_direction), gamma_analytic, nac=nac)
    if band_npoints:
        result.bands = band_structure(phonon, npoints=band_npoints)
    if dos_mesh is not None:
        result.dos = density_of_states(phonon, dos_mesh)
    if output_dir is not None:
        result.files = write_phonopy_files(phonon, output_dir, bands=bool(band_npoints), dos=dos_mesh is not None)
        if result.bands is not None:
            result.files['band_png'] = plot_band_structure(
                result.bands,
                Path(output_dir) / 'band_structure.png',
                dos=result.dos,
                title=atoms.get_chemical_formula(),
            )
        if result.dos is not None:
            result.files['dos_png'] = plot_dos(
                result.dos, Path(output_dir) / 'dos.png', title=atoms.get_chemical_formula()
            )
    return result
