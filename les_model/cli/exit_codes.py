"""Exit codes of the ``les-train``, ``les-md`` and ``les-eval`` programs.

Process exit statuses are 8-bit, so these are small numbers; the AiiDA parsers map them onto the CalcJob exit
codes (``aiida_les``: 400 out of walltime, 410 NaN loss, 420 MD unstable, 430 invalid config, ...).
Codes 1 (unexpected Python error) and 2 (command-line usage error, from argparse) are reserved.
"""

from __future__ import annotations

import enum

__all__ = ['ExitCode']


class ExitCode(enum.IntEnum):
    """Distinct exit statuses; each failure also prints one line ``les-<prog>: ERROR <NAME>: <message>`` on stderr."""

    #: Finished; every output file written.
    SUCCESS = 0
    #: Unexpected error (Python traceback on stderr).
    UNEXPECTED = 1
    #: Command-line usage error (argparse).
    USAGE = 2
    #: The YAML configuration is invalid (unknown key, wrong type or value); nothing was computed.
    INVALID_CONFIG = 3
    #: An input file (data, structure, model) is missing or unreadable.
    INPUT_FILE_ERROR = 4
    #: A model file has an incompatible format version or does not fit the data (species).
    INCOMPATIBLE_MODEL = 5
    #: Training: the loss or a gradient became NaN/inf (lower the learning rate).
    NAN_LOSS = 10
    #: Training: ``max_walltime`` reached; ``checkpoint.pt`` written, rerun with ``--resume`` to continue.
    OUT_OF_WALLTIME = 11
    #: MD: the committee force deviation exceeded ``max_force_std`` (the trajectory up to that frame is written).
    MD_UNCERTAIN = 20
    #: MD: two atoms came closer than ``min_distance``.
    MD_ATOMS_TOO_CLOSE = 21
    #: MD: the energy per atom changed by more than ``max_energy_change`` or became NaN/inf.
    MD_ENERGY_EXPLODED = 22
    #: The requested device is not available (e.g. ``--device cuda`` without a GPU).
    DEVICE_UNAVAILABLE = 30
