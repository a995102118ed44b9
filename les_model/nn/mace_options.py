"""The ``model.mace`` options of the MACE host: names, checks and their mapping onto ``mace.modules.MACE`` arguments.

Pure Python (no torch, no mace import), so :func:`~les_model.config.validate_config` checks these options before
anything runs. Both spellings are accepted: the ``mace_run_train`` flags users know (``num_channels``, ``max_L``,
``num_radial_basis``, ``num_cutoff_basis``, ``interaction``, ``interaction_first``) and the ``MACE`` class arguments
(``hidden_irreps``, ``num_bessel``, ``num_polynomial_cutoff``, ``interaction_cls``, ...). What the LES model sets
itself is refused with the key that sets it (``r_max`` is ``model.cutoff``; E0 come from ``reference_energies``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ['MACE_DEFAULTS', 'MPNN_ONLY', 'mace_arguments']

INTERACTIONS = (
    'RealAgnosticResidualInteractionBlock',
    'RealAgnosticAttResidualInteractionBlock',
    'RealAgnosticInteractionBlock',
    'RealAgnosticDensityInteractionBlock',
    'RealAgnosticDensityResidualInteractionBlock',
    'RealAgnosticResidualNonLinearInteractionBlock',
)

#: Defaults of this host (kept from earlier releases so saved models rebuild unchanged; mace_run_train differs in
#: ``max_ell`` 3 and ``num_cutoff_basis`` 5). Channels default to ``model.n_features``; ``avg_num_neighbors`` is
#: computed from the training data when not given.
MACE_DEFAULTS: dict[str, Any] = {
    'num_bessel': 8,
    'num_polynomial_cutoff': 6,
    'max_ell': 2,
    'max_L': 1,
    'num_interactions': 2,
    'correlation': 3,
    'MLP_irreps': '16x0e',
    'gate': 'silu',
    'interaction_cls': 'RealAgnosticResidualInteractionBlock',
    'interaction_cls_first': 'RealAgnosticResidualInteractionBlock',
}

#: mace_run_train spelling -> MACE class argument.
ALIASES = {
    'num_radial_basis': 'num_bessel',
    'num_cutoff_basis': 'num_polynomial_cutoff',
    'interaction': 'interaction_cls',
    'interaction_first': 'interaction_cls_first',
}

#: Keys the LES model sets itself -> where to set them instead.
REFUSED = {
    'r_max': 'model.cutoff',
    'atomic_energies': 'reference_energies (E0 are fitted from the data)',
    'E0s': 'reference_energies (E0 are fitted from the data)',
    'atomic_numbers': 'model.species',
    'num_elements': 'model.species',
}

#: ModelConfig fields of the mpnn backbone -> the MACE option that plays their part.
MPNN_ONLY = {
    'n_interactions': 'mace.num_interactions',
    'n_radial': 'mace.num_radial_basis',
    'radial_basis': 'mace.radial_type',
    'cutoff_function': 'mace.num_cutoff_basis (MACE uses a polynomial cutoff)',
    'angular': 'mace.max_L / mace.max_ell',
    'readout_hidden': 'mace.MLP_irreps',
}


def _int(low: int, high: int | None = None) -> Callable[[Any], str | None]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            bound = f'between {low} and {high}' if high else f'>= {low}'
            return f'expected an integer {bound}, got {value!r}'
        return None

    return check


def _choice(*options) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f'expected one of {list(options)}, got {v!r}'


def _irreps(value) -> str | None:
    # e.g. '32x0e + 32x1o'; the full parse happens in e3nn when the host is built
    if not isinstance(value, str) or not all('x' in part for part in value.replace(' ', '').split('+')):
        return f"expected irreps such as '32x0e + 32x1o', got {value!r}"
    return None


def _positive_number(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f'expected a number > 0, got {value!r}'
    return None


def _int_list(value) -> str | None:
    if not isinstance(value, list | tuple) or not value or not all(_int(1)(v) is None for v in value):
        return f'expected a list of positive integers such as [64, 64, 64], got {value!r}'
    return None


def _correlation(value) -> str | None:
    return None if _int(1, 4)(value) is None or _int_list(value) is None else f'expected 1..4, got {value!r}'


def _bool(value) -> str | None:
    return None if isinstance(value, bool) else f'expected true or false, got {value!r}'


#: MACE class argument (or shape helper) -> check returning an error text or None.
CHECKS: dict[str, Callable[[Any], str | None]] = {
    'num_channels': _int(1),
    'max_L': _int(0, 3),
    'hidden_irreps': _irreps,
    'num_bessel': _int(1),
    'num_polynomial_cutoff': _int(1),
    'max_ell': _int(1, 4),
    'num_interactions': _int(1, 6),
    'correlation': _correlation,
    'MLP_irreps': _irreps,
    'radial_MLP': _int_list,
    'radial_type': _choice('bessel', 'gaussian', 'chebyshev'),
    'distance_transform': _choice('None', 'Agnesi', 'Soft'),
    'gate': _choice('silu', 'tanh', 'abs', 'None', None),
    'interaction_cls': _choice(*INTERACTIONS),
    'interaction_cls_first': _choice(*INTERACTIONS),
    'avg_num_neighbors': _positive_number,
    'use_reduced_cg': _bool,
    'use_so3': _bool,
    'use_agnostic_product': _bool,
}


def allowed_keys() -> list[str]:
    """Every key ``model.mace`` accepts."""
    return sorted(set(CHECKS) | set(ALIASES))


def hidden_irreps(channels: int, max_l: int) -> str:
    """``channels`` copies of every spherical harmonic up to ``max_l`` (as ``mace_run_train --max_L`` builds them)."""
    return ' + '.join(f'{channels}x{ell}{"e" if ell % 2 == 0 else "o"}' for ell in range(max_l + 1))


def scalar_channels(irreps: str) -> int:
    """Multiplicity of the ``0e`` part of an irreps string (the invariant features the charge head reads)."""
    for part in irreps.replace(' ', '').split('+'):
        mul, _, irrep = part.partition('x')
        if irrep == '0e':
            return int(mul)
    return 0


def mace_arguments(options: Mapping[str, Any], n_features: int, default_n_features: int = 64) -> tuple[dict, list]:
    """Check ``model.mace`` and turn it into ``MACE`` keyword arguments (plain Python values).

    :param options: the ``model.mace`` mapping (either spelling).
    :param n_features: ``model.n_features``: the channel count unless ``num_channels`` / ``hidden_irreps`` is given.
    :param default_n_features: the default of ``model.n_features`` (a non-default value that disagrees with
        ``num_channels`` is an error).
    :return: (arguments with every default filled in and ``hidden_irreps`` as a string, list of error texts).
    """
    errors: list[str] = []
    args: dict[str, Any] = {}
    for key, value in options.items():
        if key in REFUSED:
            errors.append(f'mace.{key} is set by the LES model: use {REFUSED[key]}')
            continue
        name = ALIASES.get(key, key)
        if name not in CHECKS:
            errors.append(f'mace: unknown key {key!r}; allowed keys are {allowed_keys()}')
            continue
        if name in args:
            errors.append(f'mace.{key} and its other spelling are both given')
            continue
        problem = CHECKS[name](value)
        if problem:
            errors.append(f'mace.{key}: {problem}')
            continue
        args[name] = value
    channels = args.pop('num_channels', None)
    max_l = args.pop('max_L', None)
    if 'hidden_irreps' in args and (channels is not None or max_l is not None):
        errors.append('give mace.hidden_irreps or mace.num_channels / mace.max_L, not both')
    if 'hidden_irreps' not in args:
        channels = channels if channels is not None else n_features
        args['hidden_irreps'] = hidden_irreps(channels, MACE_DEFAULTS['max_L'] if max_l is None else max_l)
    scalars = scalar_channels(args['hidden_irreps'])
    if scalars == 0:
        errors.append(f'mace.hidden_irreps {args["hidden_irreps"]!r} has no 0e channels for the charge head')
    elif n_features != default_n_features and n_features != scalars:
        errors.append(
            f'model.n_features is {n_features} but the MACE hidden irreps have {scalars} scalar channels; '
            f'set one of them only (mace.num_channels, or n_features)'
        )
    for key, value in MACE_DEFAULTS.items():
        if key != 'max_L':
            args.setdefault(key, value)
    return args, errors
