"""Help text of the programs: every configuration key with its type, default and unit, read from the dataclasses of
:mod:`les_model.config` (so a new key shows up in ``--help`` by itself; its unit goes into :data:`UNITS`)."""

from __future__ import annotations

import dataclasses
import textwrap
import types
import typing
from typing import Literal, get_args, get_origin, get_type_hints

from les_model.config import MAX_TIMESTEP_FS, EvalConfig, MDConfig, TrainConfig

__all__ = ['UNITS', 'config_epilog']

#: Unit (or meaning, for dimensionless numbers) of the numeric keys, per configuration section.
UNITS: dict[str, dict[str, str]] = {
    'ModelConfig': {'cutoff': 'Å', 'sigma': 'Å, Gaussian charge width', 'dl': 'Å, k_c = 2 pi / dl'},
    'TrainConfig': {
        'valid_fraction': 'fraction of train_file, when valid_file is null',
        'epochs': 'passes over the training set',
        'warmup_epochs': 'epochs of linear learning-rate warm-up (at most a tenth of epochs); 0 = none',
        'batch_size': 'frames',
        'lr': 'Adam learning rate',
        'weight_decay': 'AdamW weight decay',
        'scheduler_patience': 'epochs',
        'scheduler_factor': 'lr multiplier, in (0, 1)',
        'min_lr': 'learning-rate floor',
        'early_stopping_patience': 'epochs, 0 = off',
        'ema_decay': 'per step, 0 = off',
        'energy_weight': 'x MSE of energy per atom in eV',
        'forces_weight': 'x MSE of forces in eV/Å',
        'stress_weight': 'x MSE of stress in eV/Å^3',
        'dipole_weight': 'x MSE of dipole in e Å',
        'bec_weight': 'x MSE of Born effective charges in e',
        'grad_clip': 'gradient norm',
        'checkpoint_every': 'optimiser steps',
        'max_walltime': 's, 0 = no limit',
        'committee_size': 'models; member k uses seed + k',
    },
    'MDConfig': {
        'total_charge': 'e; null = atoms.info or 0',
        'temperature': 'K',
        'timestep': f'fs, at most {MAX_TIMESTEP_FS:g}; <= 1 with hydrogen',
        'steps': 'MD steps',
        'friction': '1/fs, Langevin',
        'taut': 'fs, thermostat time of npt (MTK or Berendsen)',
        'taup': 'fs, barostat time of npt (MTK or Berendsen)',
        'pressure': 'bar',
        'compressibility': '1/bar, Berendsen only',
        'write_every': 'steps between frames',
        'max_force_std': 'eV/Å, committee force deviation; 0 = off',
        'min_distance': 'Å, closest pair; 0 = off',
        'max_energy_change': 'eV/atom from the first frame; 0 = off',
        'scripted': 'evaluate the models through TorchScript (same numbers)',
    },
    'EvalConfig': {'batch_size': 'frames', 'eps_inf': 'dimensionless (Born charges divided by its square root)'},
}

_SECTIONS = {'train': TrainConfig, 'md': MDConfig, 'eval': EvalConfig}
_EXAMPLES = {'train': 'train.yaml', 'md': 'md.yaml', 'eval': 'eval.yaml'}


def _type_name(hint) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return ' or '.join('null' if a is type(None) else _type_name(a) for a in args)
    if origin is Literal:
        return ' | '.join(str(a) for a in args)
    if origin is tuple:
        return f'list of {_type_name(args[0])}'
    if origin is dict:
        return 'mapping'
    return getattr(hint, '__name__', str(hint))


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def _lines(cls, prefix: str = '') -> list[str]:
    lines = []
    hints = get_type_hints(cls)
    units = UNITS.get(cls.__name__, {})
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            lines.extend(_lines(hint, f'{prefix}{field.name}.'))
            continue
        default = _default(field)
        default = 'required' if default in ('', ()) else f'default {default!r}'
        unit = f'  [{units[field.name]}]' if field.name in units else ''
        lines.append(f'  {prefix}{field.name}: {_type_name(hint)}, {default}{unit}')
    return lines


def config_epilog(kind: str) -> str:
    """Return the ``--help`` epilog of the program reading a configuration of ``kind`` (``train``, ``md``, ``eval``).

    Units everywhere: Å, eV, e, fs, K, bar, s.
    """
    cls = _SECTIONS[kind]
    header = (
        f'configuration keys ({cls.__name__}; units Å, eV, e, fs, K, bar, s; unknown keys are refused). '
        f'Annotated example: examples/configs/{_EXAMPLES[kind]} in the aiida-les repository; file contract and exit '
        'codes: les_model/cli/README.md.'
    )
    return '\n'.join([textwrap.fill(header, width=100), *_lines(cls)])
