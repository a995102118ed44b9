"""Validated, frozen configuration dataclasses for models, training, MD and evaluation, with YAML in/out.

Every section rejects unknown keys (naming the allowed ones) and checks its values in ``__post_init__``;
:func:`validate_config` runs these checks on a plain mapping without computing anything, so the AiiDA plugin can
call it before it submits a job. Units: Å, eV, e, fs, K, bar, s.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

__all__ = [
    'ConfigError',
    'DataKeysConfig',
    'EvalConfig',
    'MDConfig',
    'ModelConfig',
    'TrainConfig',
    'load_config',
    'validate_config',
]


class ConfigError(ValueError):
    """An invalid configuration; ``errors`` lists one message per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__('; '.join(self.errors))


class _Section:
    """Mixin: construction from mappings (unknown keys rejected), validation, YAML round trip."""

    def _check(self) -> list[str]:  # pragma: no cover - overridden
        return []

    def __post_init__(self):
        errors = self._check()
        if errors:
            raise ConfigError([f'{type(self).__name__}: {e}' for e in errors])

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> _Section:
        """Build the section from a plain mapping (as read from YAML).

        :param mapping: keys are field names; nested sections are mappings too.
        :raises ConfigError: on unknown keys, wrong types or invalid values (all problems listed at once).
        """
        errors: list[str] = []
        obj = _build(cls, mapping or {}, cls.__name__, errors)
        if errors:
            raise ConfigError(errors)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """Return a plain mapping (lists instead of tuples) that :meth:`from_dict` accepts."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_yaml(cls, path: str | Path) -> _Section:
        """Read a YAML file; see :meth:`from_dict`."""
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError([f'{path}: expected a YAML mapping at top level, got {type(data).__name__}'])
        return cls.from_dict(data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Write the section as YAML to ``path`` (if given) and return the text."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding='utf-8')
        return text


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls, mapping, where: str, errors: list[str]):
    if not isinstance(mapping, Mapping):
        errors.append(f'{where}: expected a mapping, got {type(mapping).__name__}')
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        errors.append(f'{where}: unknown keys {unknown}; allowed keys are {sorted(fields)}')
    hints = get_type_hints(cls)
    kwargs = {}
    for name, value in mapping.items():
        if name not in fields:
            continue
        converted = _convert(hints[name], value, f'{where}.{name}', errors)
        if converted is not _INVALID:
            kwargs[name] = converted
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        errors.extend(f'{where}: {e.split(": ", 1)[-1]}' for e in exc.errors)
    except TypeError as exc:
        errors.append(f'{where}: {exc}')
    return None


_INVALID = object()


def _convert(hint, value, where: str, errors: list[str]):
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        sub: list[str] = []
        for a in inner:
            trial: list[str] = []
            out = _convert(a, value, where, trial)
            if not trial:
                return out
            sub.extend(trial)
        errors.append(sub[0] if len(inner) == 1 else f'{where}: {value!r} matches none of {inner}')
        return _INVALID
    if dataclasses.is_dataclass(hint):
        built = _build(hint, value, where, errors)
        return built if built is not None else _INVALID
    if origin is Literal:
        if value not in args:
            errors.append(f'{where}: expected one of {list(args)}, got {value!r}')
            return _INVALID
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            errors.append(f'{where}: expected a list, got {type(value).__name__}')
            return _INVALID
        item = args[0]
        out = [_convert(item, v, f'{where}[{i}]', errors) for i, v in enumerate(value)]
        return _INVALID if any(o is _INVALID for o in out) else tuple(out)
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.append(f'{where}: expected a mapping, got {type(value).__name__}')
            return _INVALID
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f'{where}: expected a number, got {value!r}')
            return _INVALID
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f'{where}: expected an integer, got {value!r}')
            return _INVALID
        return value
    if hint is bool:
        if not isinstance(value, bool):
            errors.append(f'{where}: expected true or false, got {value!r}')
            return _INVALID
        return value
    if hint is str:
        if not isinstance(value, str):
            errors.append(f'{where}: expected a string, got {value!r}')
            return _INVALID
        return value
    return value


def _positive(errors: list[str], obj, *names: str, allow_zero: bool = False):
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        if value < 0 or (value == 0 and not allow_zero):
            bound = '>= 0' if allow_zero else '> 0'
            errors.append(f'{name} must be {bound}, got {value}')


Device = Literal['auto', 'cpu', 'cuda']
Dtype = Literal['float32', 'float64']


@dataclasses.dataclass(frozen=True)
class DataKeysConfig(_Section):
    """Names under which extxyz files store the labels (``atoms.info`` / ``atoms.arrays`` / calculator results).

    A label set to ``null`` is never read (ignored even where the file has it).
    """

    energy: str | None = 'energy'
    forces: str | None = 'forces'
    stress: str | None = 'stress'
    dipole: str | None = 'dipole'
    bec: str | None = 'bec'
    total_charge: str = 'total_charge'
    spin: str = 'spin'

    def _check(self):
        values = dataclasses.asdict(self)
        return [f'{k} must be a non-empty string or null' for k, v in values.items() if v == '']


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Section):
    """Architecture of an LES potential: short-range host, charge head, long-range latent Ewald part.

    ``cutoff`` [Å] is the short-range cutoff; ``sigma`` [Å] the Gaussian charge width and ``dl`` [Å] the
    reciprocal-space resolution (k_c = 2 pi / dl) of the latent Ewald sum.

    ``backbone: mace`` takes its options from ``mace`` (mace_run_train spellings such as ``num_channels``,
    ``max_L``, ``num_radial_basis`` or the ``MACE`` class arguments; see :mod:`les_model.nn.mace_options`); the
    mpnn settings ``n_interactions``, ``n_radial``, ``radial_basis``, ``cutoff_function``, ``angular`` and
    ``readout_hidden`` are refused with it unless left at their defaults.
    """

    backbone: Literal['mpnn', 'mace'] = 'mpnn'
    cutoff: float = 5.0
    n_features: int = 64
    n_radial: int = 8
    radial_basis: Literal['bessel', 'gaussian'] = 'bessel'
    cutoff_function: Literal['cosine', 'polynomial'] = 'polynomial'
    n_interactions: int = 2
    angular: bool = True
    readout_hidden: int = 32
    long_range: bool = True
    charge_model: Literal['latent', 'qeq'] = 'latent'
    charge_hidden: int = 32
    charge_distribution: Literal['learned', 'uniform'] = 'learned'
    sigma: float = 1.0
    dl: float = 2.0
    charge_embedding: bool = True
    spin_embedding: bool = False
    species: tuple[int, ...] = ()
    mace: dict[str, Any] = dataclasses.field(default_factory=dict)

    def _check(self):
        errors: list[str] = []
        _positive(errors, self, 'cutoff', 'n_features', 'n_radial', 'n_interactions', 'readout_hidden')
        _positive(errors, self, 'charge_hidden', 'sigma', 'dl')
        if self.n_interactions > 4:
            errors.append(f'n_interactions must be between 1 and 4, got {self.n_interactions}')
        bad = [z for z in self.species if not 1 <= z <= 118]
        if bad:
            errors.append(f'species must be atomic numbers 1..118, got {bad}')
        if len(set(self.species)) != len(self.species):
            errors.append(f'species must not repeat, got {list(self.species)}')
        errors.extend(self._check_backbone())
        return errors

    def _check_backbone(self) -> list[str]:
        from les_model.nn.mace_options import MPNN_ONLY, mace_arguments

        defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
        if self.backbone != 'mace':
            return [f'mace options {sorted(self.mace)} apply only with backbone: mace'] if self.mace else []
        errors = [
            f'{name} (= {getattr(self, name)!r}) applies to the mpnn backbone only; with mace use {instead}'
            for name, instead in MPNN_ONLY.items()
            if getattr(self, name) != defaults[name]
        ]
        _, mace_errors = mace_arguments(self.mace, self.n_features, defaults['n_features'])
        return errors + mace_errors


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Section):
    """Training run: data, optimiser, loss weights, checkpoints, committee.

    Loss weights multiply mean-squared errors of energy per atom [eV], forces [eV/Å], stress [eV/Å^3],
    dipole [e Å] and Born charges [e]. ``max_walltime`` [s] (0 = none) makes the run checkpoint and exit with
    :attr:`~les_model.cli.exit_codes.ExitCode.OUT_OF_WALLTIME` before a scheduler kills it.

    Stability defaults (see :mod:`les_model.train.schedule` and :mod:`les_model.train.offset`): the learning rate
    rises linearly over ``warmup_epochs`` (at most a tenth of ``epochs``); ``train_errors: ema`` reports training
    errors of the EMA weights after each epoch (``running``: accumulated during the epoch, free but noisy);
    ``refit_reference_energies`` refits E0 to the residuals after each epoch (``least_squares`` E0 only).
    ``export_file``: also write the trained model or committee (energy = committee mean) as a metatomic model
    (``les-export``; needs the ``export`` extra).
    """

    train_file: str = ''
    valid_file: str | None = None
    valid_fraction: float = 0.1
    keys: DataKeysConfig = dataclasses.field(default_factory=DataKeysConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    reference_energies: Literal['least_squares', 'zero'] = 'least_squares'
    refit_reference_energies: bool = True
    seed: int = 0
    epochs: int = 100
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: Literal['plateau', 'cosine', 'none'] = 'plateau'
    warmup_epochs: float = 5.0
    scheduler_patience: int = 10
    scheduler_factor: float = 0.5
    min_lr: float = 1e-6
    early_stopping_patience: int = 0
    ema_decay: float = 0.99
    train_errors: Literal['ema', 'running'] = 'ema'
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float = 0.0
    dipole_weight: float = 0.0
    bec_weight: float = 0.0
    grad_clip: float = 10.0
    checkpoint_every: int = 100
    max_walltime: float = 0.0
    device: Device = 'auto'
    dtype: Dtype = 'float32'
    committee_size: int = 1
    bootstrap: bool = False
    init_model: str | None = None
    model_file: str = 'model.pt'
    export_file: str | None = None
    progress: bool = True

    def _check(self):
        errors: list[str] = []
        if not self.train_file:
            errors.append('train_file is required (path of an extxyz file)')
        if not 0.0 <= self.valid_fraction < 1.0:
            errors.append(f'valid_fraction must be in [0, 1), got {self.valid_fraction}')
        _positive(errors, self, 'epochs', 'batch_size', 'lr', 'scheduler_patience', 'committee_size')
        _positive(errors, self, 'checkpoint_every', 'grad_clip')
        _positive(errors, self, 'weight_decay', 'min_lr', 'early_stopping_patience', 'max_walltime', allow_zero=True)
        _positive(errors, self, 'warmup_epochs', allow_zero=True)
        _positive(errors, self, 'energy_weight', 'forces_weight', 'stress_weight', allow_zero=True)
        _positive(errors, self, 'dipole_weight', 'bec_weight', allow_zero=True)
        if not 0.0 < self.scheduler_factor < 1.0:
            errors.append(f'scheduler_factor must be in (0, 1), got {self.scheduler_factor}')
        if not 0.0 <= self.ema_decay < 1.0:
            errors.append(f'ema_decay must be in [0, 1) (0 disables EMA), got {self.ema_decay}')
        weights = (self.energy_weight, self.forces_weight, self.stress_weight, self.dipole_weight, self.bec_weight)
        if sum(weights) <= 0:
            errors.append('at least one loss weight must be > 0')
        if not self.model_file.endswith('.pt'):
            errors.append(f'model_file must end in .pt, got {self.model_file!r}')
        if self.export_file is not None and not self.export_file.endswith('.pt'):
            errors.append(f'export_file must end in .pt, got {self.export_file!r}')
        return errors


#: Largest MD time step accepted [fs]; see :class:`MDConfig`.
MAX_TIMESTEP_FS = 5.0


@dataclasses.dataclass(frozen=True)
class MDConfig(_Section):
    """Molecular dynamics with a committee of models; stops early when uncertain or unphysical.

    ``temperature`` [K], ``timestep`` [fs], ``friction`` [1/fs] (Langevin), ``taut``/``taup`` [fs],
    ``pressure`` [bar], ``compressibility`` [1/bar] (Berendsen NPT). Stopping bounds, each 0 = off:
    ``max_force_std`` [eV/Å] (committee force deviation), ``min_distance`` [Å] (closest pair),
    ``max_energy_change`` [eV/atom] relative to the first frame (a NaN or infinite energy always stops the run).
    ``total_charge`` [e] (None: the structure file's ``total_charge``, default 0) is given to the model; it and the
    spin ``multiplicity`` (2S+1) are written on every frame, so frames taken from the trajectory are labelled at the
    charge and spin they were run at.

    ``timestep`` is at most :data:`MAX_TIMESTEP_FS` (5 fs). Velocity Verlet and Langevin need about ten steps per
    period of the fastest vibration: an O-H or C-H stretch (~3000-3700 cm^-1, period ~9-11 fs) needs <= 1 fs, and
    5 fs still resolves modes up to ~670 cm^-1 (period ~50 fs), the range of heavy-atom ionic solids and metals.
    Anything longer integrates no real system stably; it is almost always a unit mistake (ps or atomic units).
    ``scripted`` evaluates the members through their TorchScript-compiled energy path (same numbers).
    """

    models: tuple[str, ...] = ()
    structure: str = ''
    total_charge: float | None = None
    multiplicity: int = 1
    ensemble: Literal['nvt', 'npt', 'nve'] = 'nvt'
    temperature: float = 300.0
    timestep: float = 0.5
    steps: int = 1000
    friction: float = 0.01
    taut: float = 100.0
    taup: float = 1000.0
    pressure: float = 1.01325
    compressibility: float = 4.57e-5
    write_every: int = 10
    trajectory_file: str = 'md.extxyz'
    summary_file: str = 'md_summary.json'
    max_force_std: float = 0.0
    min_distance: float = 0.5
    max_energy_change: float = 5.0
    device: Device = 'auto'
    dtype: Dtype = 'float64'
    seed: int = 0
    scripted: bool = False

    def _check(self):
        errors: list[str] = []
        if not self.models:
            errors.append('models must list at least one model file')
        if not self.structure:
            errors.append('structure is required (path of a structure file readable by ase)')
        _positive(errors, self, 'timestep', 'steps', 'write_every', 'friction', 'taut', 'taup', 'compressibility')
        _positive(errors, self, 'temperature', 'max_force_std', 'min_distance', 'max_energy_change', allow_zero=True)
        if self.timestep > MAX_TIMESTEP_FS:
            errors.append(
                f'timestep must be <= {MAX_TIMESTEP_FS} fs (about ten steps per period of the fastest vibration; '
                f'<= 1 fs with hydrogen), got {self.timestep} fs'
            )
        if isinstance(self.multiplicity, bool) or not isinstance(self.multiplicity, int) or self.multiplicity < 1:
            errors.append(f'multiplicity must be an integer >= 1 (2S+1), got {self.multiplicity!r}')
        if self.ensemble != 'nve' and self.temperature <= 0:
            errors.append(f'temperature must be > 0 for ensemble {self.ensemble!r}, got {self.temperature}')
        return errors


@dataclasses.dataclass(frozen=True)
class EvalConfig(_Section):
    """Evaluation of one or several models (a committee) on an extxyz file.

    ``eps_inf`` (dimensionless, optional): high-frequency dielectric constant; predicted Born effective charges are
    divided by ``sqrt(eps_inf)`` (latent charges of a model trained on energies and forces alone are screened
    charges; this turns their Born charges into an estimate of the physical Z*). Leave it unset for a model
    trained on Born-charge or dipole labels.
    """

    models: tuple[str, ...] = ()
    data_file: str = ''
    keys: DataKeysConfig = dataclasses.field(default_factory=DataKeysConfig)
    predictions_file: str = 'predictions.extxyz'
    metrics_file: str = 'metrics.json'
    batch_size: int = 8
    compute_bec: bool = False
    eps_inf: float | None = None
    device: Device = 'auto'
    dtype: Dtype = 'float64'

    def _check(self):
        errors: list[str] = []
        if self.eps_inf is not None and not self.eps_inf > 0:
            errors.append(f'eps_inf must be positive, got {self.eps_inf}')
        if not self.models:
            errors.append('models must list at least one model file')
        if not self.data_file:
            errors.append('data_file is required (path of an extxyz file)')
        _positive(errors, self, 'batch_size')
        return errors


_KINDS: dict[str, type[_Section]] = {
    'model': ModelConfig,
    'train': TrainConfig,
    'md': MDConfig,
    'eval': EvalConfig,
    'evaluate': EvalConfig,
}


def _kind(kind: str) -> type[_Section]:
    if kind not in _KINDS:
        raise ValueError(f'kind must be one of {sorted(_KINDS)}, got {kind!r}')
    return _KINDS[kind]


def validate_config(mapping: Mapping[str, Any] | None, kind: str) -> list[str]:
    """Check a configuration mapping without computing anything.

    :param mapping: the configuration as read from YAML (or an AiiDA ``Dict``).
    :param kind: ``'model'``, ``'train'``, ``'md'`` or ``'eval'``.
    :return: one message per problem; empty when the configuration is valid.
    """
    try:
        _kind(kind).from_dict(mapping)
    except ConfigError as exc:
        return exc.errors
    return []


def load_config(source: Mapping[str, Any] | str | Path, kind: str) -> _Section:
    """Return the validated configuration of ``kind`` from a mapping or a YAML file.

    :raises ConfigError: listing every problem.
    """
    cls = _kind(kind)
    if isinstance(source, Mapping):
        return cls.from_dict(source)
    return cls.from_yaml(source)
