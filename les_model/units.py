"""Physical constants in the units used throughout :mod:`les_model`: eV, Å, e (elementary charge), fs.

All energies are in eV, lengths in Å, charges in units of the elementary charge e and times in fs.
"""

from __future__ import annotations

import math

#: Coulomb constant :math:`k_e = 1 / (4 \pi \varepsilon_0)` in eV Å / e^2.
COULOMB_CONSTANT: float = 14.399645

#: Vacuum permittivity :math:`\varepsilon_0` in e^2 / (eV Å), i.e. ``1 / (4 pi k_e)``.
EPSILON_0: float = 1.0 / (4.0 * math.pi * COULOMB_CONSTANT)

#: Conversion from eV / Å^3 to GPa (stress).
EV_PER_A3_TO_GPA: float = 160.21766208

#: Conversion from e Å (dipole) to Debye.
E_ANGSTROM_TO_DEBYE: float = 4.803204544

#: Conversion from e / Å^2 (polarization) to C / m^2.
E_PER_A2_TO_C_PER_M2: float = 16.02176634

#: Conversion from THz to cm^-1 (frequencies).
THZ_TO_CM: float = 33.35640951981521

__all__ = [
    'COULOMB_CONSTANT',
    'EPSILON_0',
    'EV_PER_A3_TO_GPA',
    'E_ANGSTROM_TO_DEBYE',
    'E_PER_A2_TO_C_PER_M2',
    'THZ_TO_CM',
]
