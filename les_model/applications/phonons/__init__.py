"""Harmonic phonons with phonopy and the non-analytic correction from (predicted) Born charges.

Modules: :mod:`.compute` (phonopy set-up, force constants, Gamma frequencies, bands, DOS), :mod:`.born` (Born charges
and NAC parameters), :mod:`.files` (phonopy files and plots), :mod:`.plots` (PNG plots), :mod:`.run`
(:func:`run_phonons`, everything in one call). The names below are the package's public interface.
"""

from les_model.applications.phonons.born import (
    born_charges_from_calculator,
    dielectric_tensor,
    nac_parameters,
    unitcell_born_from_primitive,
)
from les_model.applications.phonons.compute import (
    THZ_TO_CM,
    PhononResult,
    atoms_to_phonopy,
    attach_force_sets,
    band_structure,
    compute_force_sets,
    compute_phonons,
    create_phonopy,
    density_of_states,
    displaced_supercells,
    gamma_frequencies,
    phonopy_to_atoms,
    set_force_sets,
)
from les_model.applications.phonons.files import write_phonon_outputs, write_phonopy_files
from les_model.applications.phonons.plots import plot_band_structure, plot_dos
from les_model.applications.phonons.run import run_phonons

__all__ = [
    'THZ_TO_CM',
    'PhononResult',
    'atoms_to_phonopy',
    'attach_force_sets',
    'band_structure',
    'born_charges_from_calculator',
    'compute_force_sets',
    'compute_phonons',
    'create_phonopy',
    'density_of_states',
    'dielectric_tensor',
    'displaced_supercells',
    'gamma_frequencies',
    'nac_parameters',
    'phonopy_to_atoms',
    'plot_band_structure',
    'plot_dos',
    'run_phonons',
    'set_force_sets',
    'unitcell_born_from_primitive',
    'write_phonon_outputs',
    'write_phonopy_files',
]
