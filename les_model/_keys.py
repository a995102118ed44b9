"""Field names of the batched data dictionaries used throughout :mod:`les_model`.

A batch holds the atoms of ``B`` structures concatenated (``N`` atoms in all, ``E`` directed edges). Each constant
below is a key of that dictionary; the comment gives ``(shape, dtype) | meaning [unit]``.
"""

from typing import Final

# --- inputs -----------------------------------------------------------------------------------------------------
POSITIONS: Final[str] = 'positions'  # (N, 3) float | Cartesian positions [Å]
ATOMIC_NUMBERS: Final[str] = 'atomic_numbers'  # (N,) int64 | atomic numbers Z
BATCH: Final[str] = 'batch'  # (N,) int64 | index of the structure each atom belongs to, sorted
CELL: Final[str] = 'cell'  # (B, 3, 3) float | lattice vectors as rows (ase convention) [Å]
PBC: Final[str] = 'pbc'  # (B, 3) bool | periodicity along each lattice vector
N_ATOMS: Final[str] = 'n_atoms'  # (B,) int64 | number of atoms of each structure
TOTAL_CHARGE: Final[str] = 'total_charge'  # (B,) float | total charge of each structure [e]
SPIN: Final[str] = 'spin'  # (B,) float | spin multiplicity label of each structure (2S, unpaired electrons)

# --- graph (filled by the model) --------------------------------------------------------------------------------
EDGE_INDEX: Final[str] = 'edge_index'  # (2, E) int64 | (i, j) pairs within the cutoff, r_ij = r_j - r_i + shift
EDGE_VECTORS: Final[str] = 'edge_vectors'  # (E, 3) float | r_j - r_i + shift, differentiable [Å]
EDGE_LENGTHS: Final[str] = 'edge_lengths'  # (E,) float | |r_ij| [Å]
SPECIES_INDEX: Final[str] = 'species_index'  # (N,) int64 | index of each atom's species in the model's species list
NODE_STATE: Final[str] = 'node_state'  # (N, F) float | total-charge/spin embedding broadcast to atoms (zeros if off)

# --- labels (reference data) and predictions --------------------------------------------------------------------
ENERGY: Final[str] = 'energy'  # (B,) float | total energy [eV]
FORCES: Final[str] = 'forces'  # (N, 3) float | forces -dE/dr [eV/Å]
STRESS: Final[str] = 'stress'  # (B, 3, 3) float | stress (1/V) dE/d(strain), ase sign convention [eV/Å^3]
DIPOLE: Final[str] = 'dipole'  # (B, 3) float | dipole moment sum_i q_i r_i [e Å]
BEC: Final[str] = 'bec'  # (N, 3, 3) float | Born effective charges Z*_{i,ab} = d mu_a / d r_{i,b} [e]
CHARGES: Final[str] = 'charges'  # (N,) float | latent charges q_i [e] (prediction only)

# --- label masks: True where the structure (or the atom's structure) carries the label --------------------------
ENERGY_MASK: Final[str] = 'energy_mask'  # (B,) bool
FORCES_MASK: Final[str] = 'forces_mask'  # (B,) bool
STRESS_MASK: Final[str] = 'stress_mask'  # (B,) bool
DIPOLE_MASK: Final[str] = 'dipole_mask'  # (B,) bool
BEC_MASK: Final[str] = 'bec_mask'  # (B,) bool

# --- intermediate predictions -----------------------------------------------------------------------------------
NODE_ENERGY: Final[str] = 'node_energy'  # (N,) float | short-range per-atom energy incl. E0 [eV]
NODE_FEATURES: Final[str] = 'node_features'  # (N, F) float | host features fed to the charge head
SR_ENERGY: Final[str] = 'sr_energy'  # (B,) float | short-range energy incl. E0 [eV]
LR_ENERGY: Final[str] = 'lr_energy'  # (B,) float | long-range (latent Ewald) energy [eV]

LABEL_KEYS: Final[tuple[str, ...]] = (ENERGY, FORCES, STRESS, DIPOLE, BEC)
MASK_OF: Final[dict[str, str]] = {
    ENERGY: ENERGY_MASK,
    FORCES: FORCES_MASK,
    STRESS: STRESS_MASK,
    DIPOLE: DIPOLE_MASK,
    BEC: BEC_MASK,
}
