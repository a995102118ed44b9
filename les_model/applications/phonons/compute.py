r"""Harmonic phonons with phonopy: finite displacements evaluated by any ASE calculator (or given force sets), force
constants, Gamma frequencies, band structure and DOS, with the non-analytic correction (NAC) from Born effective
charges and a high-frequency dielectric tensor, so that the LO-TO splitting appears.

Units: forces in eV/Å, force constants in eV/Å^2, masses in amu, frequencies in THz (``1 THz = 33.35641 cm^-1``),
Born effective charges in e, the NAC factor in eV Å / e^2 (the Coulomb constant
:math:`k_e = 1 / (4 \pi \varepsilon_0) = 14.399645`). Near :math:`q \to 0` along :math:`\hat q` the NAC adds to the
dynamical matrix

.. math::

    D^{na}_{i a, j b} = \frac{4 \pi k_e}{V \sqrt{m_i m_j}}
        \frac{(\hat q \cdot Z^*_i)_a (\hat q \cdot Z^*_j)_b}{\hat q \cdot \varepsilon_\infty \hat q},

which for a rigid-ion rock-salt crystal gives :math:`\omega_{LO}^2 - \omega_{TO}^2 = 4 \pi k_e Z^2 /
(\varepsilon_\infty V \mu)` (:math:`\mu` the reduced mass).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import ase
import numpy as np
from phonopy import Phonopy
from phonopy.phonon.band_structure import get_band_qpoints_and_path_connections
from phonopy.structure.atoms import PhonopyAtoms

from les_model.applications.phonons.born import nac_parameters
from les_model.units import COULOMB_CONSTANT, THZ_TO_CM

__all__ = [
    'THZ_TO_CM',
    'PhononResult',
    'atoms_to_phonopy',
    'attach_force_sets',
    'band_structure',
    'compute_force_sets',
    'compute_phonons',
    'create_phonopy',
    'density_of_states',
    'displaced_supercells',
    'gamma_frequencies',
    'phonopy_to_atoms',
    'set_force_sets',
]


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


def attach_force_sets(phonon: Phonopy, calculator=None, force_sets: np.ndarray | dict | None = None) -> None:
    """Give ``phonon`` its forces (computed with ``calculator`` unless ``force_sets`` is given) and force constants.

    :param calculator: ASE calculator for the displaced supercells; not needed when ``force_sets`` is given.
    :param force_sets: (n_displacements, n_supercell_atoms, 3) forces in eV/Å in the order of the displacements
        of :func:`create_phonopy`, or a phonopy dataset dict (``natom``, ``first_atoms`` with ``number``,
        ``displacement`` and ``forces``) that replaces those displacements.
    """
    if isinstance(force_sets, dict):
        n_super = len(phonon.supercell)
        if int(force_sets.get('natom', -1)) != n_super:
            raise ValueError(f'force-set dataset has natom={force_sets.get("natom")}, the supercell has {n_super}')
        phonon.dataset = force_sets
        phonon.produce_force_constants(show_drift=False)
        phonon.symmetrize_force_constants()
        return
    if force_sets is None:
        if calculator is None:
            raise ValueError('run_phonons needs a calculator or force_sets, got neither')
        force_sets = compute_force_sets(phonon, calculator)
    set_force_sets(phonon, force_sets)


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


@dataclasses.dataclass
class PhononResult:
    """Everything :func:`compute_phonons` computes (and the files :func:`~.files.write_phonon_outputs` wrote).

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


def compute_phonons(
    phonon: Phonopy,
    born: np.ndarray | None = None,
    eps_inf=None,
    nac_factor: float = COULOMB_CONSTANT,
    q_direction: Sequence[float] = (1.0, 0.0, 0.0),
    band_npoints: int = 51,
    dos_mesh: float | Sequence[int] | None = 20,
) -> PhononResult:
    """Gamma frequencies (analytic, and with the NAC when Born charges are given), band structure and DOS.

    :param phonon: with force constants (:func:`attach_force_sets`).
    :param born: (N_unitcell, 3, 3) Born charges in e; the NAC is applied when given, together with ``eps_inf``.
    :param eps_inf: high-frequency dielectric constant, scalar or (3, 3).
    :param nac_factor: Coulomb constant of the NAC in eV Å / e^2.
    :param q_direction: direction (reduced coordinates) along which Gamma is approached for the LO modes.
    :param band_npoints: q-points per band segment (0 = no band structure).
    :param dos_mesh: q-point mesh of the DOS (None = no DOS).
    :return: :class:`PhononResult` (no files).
    """
    gamma_analytic = gamma_frequencies(phonon, None)
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
    return result
