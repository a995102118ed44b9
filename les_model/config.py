"""Validated, frozen configuration sections for models, training, MD and evaluation, with YAML in/out.

Each section is a pydantic model (:class:`~les_model.config_base.Section`): one declaration per key holds its type,
default, bounds and, in its description, its unit and meaning; unknown keys are refused (naming the allowed ones) and
the checks across keys are the sections' validators. :func:`validate_config` runs these checks on a plain mapping
without computing anything, so the AiiDA plugin can call it before it submits a job. Units: Å, eV, e, fs, K, bar, s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from les_model.config_base import Bool, ConfigError, Float, Int, Section, Str, raise_errors, section_errors

__all__ = [
    'ConfigError',
    'DataKeysConfig',
    'EvalConfig',
    'MDConfig',
    'ModelConfig',
    'TrainConfig',
    'config_class',
    'load_config',
    'validate_config',
]


Device = Literal['auto', 'cpu', 'cuda']
Dtype = Literal['float32', 'float64']


class DataKeysConfig(Section):
    """Names under which extxyz files store the labels (``atoms.info`` / ``atoms.arrays`` / calculator results).

    A label set to ``null`` is never read (ignored even where the file has it).
    """

    energy: Str | None = Field('energy', description='name of the total energy label [eV]; null = not read')
    forces: Str | None = Field('forces', description='name of the forces label [eV/Å]; null = not read')
    stress: Str | None = Field('stress', description='name of the stress label [eV/Å^3]; null = not read')
    dipole: Str | None = Field('dipole', description='name of the dipole label [e Å]; null = not read')
    bec: Str | None = Field('bec', description='name of the Born effective charges label [e]; null = not read')
    total_charge: Str = Field('total_charge', description='name of the net charge [e] in atoms.info')
    spin: Str = Field('spin', description='name of the spin multiplicity (2S+1) in atoms.info')

    @model_validator(mode='after')
    def _check(self):
        raise_errors([f'{k} must be a non-empty string or null' for k, v in self.model_dump().items() if v == ''])
        return self


class ModelConfig(Section):
    """Architecture of an LES potential: short-range host, charge head, long-range latent Ewald part.

    ``cutoff`` [Å] is the short-range cutoff; ``sigma`` [Å] the Gaussian charge width and ``dl`` [Å] the
    reciprocal-space resolution (k_c = 2 pi / dl) of the latent Ewald sum.

    ``backbone: mace`` takes its options from ``mace`` (mace_run_train spellings such as ``num_channels``,
    ``max_L``, ``num_radial_basis`` or the ``MACE`` class arguments; see :mod:`les_model.nn.mace_options`); the
    mpnn settings ``n_interactions``, ``n_radial``, ``radial_basis``, ``cutoff_function``, ``angular`` and
    ``readout_hidden`` are refused with it unless left at their defaults.
    """

    backbone: Literal['mpnn', 'mace'] = Field('mpnn', description='short-range host network')
    cutoff: Float = Field(5.0, gt=0, description='[Å] short-range cutoff radius')
    n_features: Int = Field(64, gt=0, description='[channels] features per atom (mace: num_channels)')
    n_radial: Int = Field(8, gt=0, description='[functions] radial basis size (mpnn only)')
    radial_basis: Literal['bessel', 'gaussian'] = Field('bessel', description='radial basis (mpnn only)')
    cutoff_function: Literal['cosine', 'polynomial'] = Field(
        'polynomial', description='smooth cutoff envelope (mpnn only)'
    )
    n_interactions: Int = Field(2, gt=0, description='[layers] message-passing layers, 1 to 4 (mpnn only)')
    angular: Bool = Field(True, description='angular (l = 1) messages (mpnn only)')
    readout_hidden: Int = Field(32, gt=0, description='[neurons] hidden width of the energy readout (mpnn only)')
    long_range: Bool = Field(True, description='add the latent Ewald long-range energy')
    charge_model: Literal['latent', 'qeq'] = Field('latent', description='how the latent charges are predicted')
    charge_hidden: Int = Field(32, gt=0, description='[neurons] hidden width of the charge head')
    charge_distribution: Literal['learned', 'uniform'] = Field(
        'learned', description='how a net charge is spread over the atoms'
    )
    sigma: Float = Field(1.0, gt=0, description='[Å] Gaussian width of the latent charges')
    dl: Float = Field(2.0, gt=0, description='[Å] reciprocal-space resolution of the Ewald sum, k_c = 2 pi / dl')
    charge_embedding: Bool = Field(True, description='the net charge is an input of the network')
    spin_embedding: Bool = Field(False, description='the spin multiplicity is an input of the network')
    species: tuple[Int, ...] = Field((), description='atomic numbers the model knows; empty = those of the data')
    mace: dict[str, Any] = Field(
        default_factory=dict, description='MACE options (backbone mace only; les_model/nn/mace_options.py)'
    )

    @model_validator(mode='after')
    def _check(self):
        errors: list[str] = []
        if self.n_interactions > 4:
            errors.append(f'n_interactions must be between 1 and 4, got {self.n_interactions}')
        bad = [z for z in self.species if not 1 <= z <= 118]
        if bad:
            errors.append(f'species must be atomic numbers 1..118, got {bad}')
        if len(set(self.species)) != len(self.species):
            errors.append(f'species must not repeat, got {list(self.species)}')
        raise_errors(errors + self._check_backbone())
        return self

    def _check_backbone(self) -> list[str]:
        from les_model.nn.mace_options import MPNN_ONLY, mace_arguments

        if self.backbone != 'mace':
            return [f'mace options {sorted(self.mace)} apply only with backbone: mace'] if self.mace else []
        errors = [
            f'{name} (= {getattr(self, name)!r}) applies to the mpnn backbone only; with mace use {instead}'
            for name, instead in MPNN_ONLY.items()
            if getattr(self, name) != self.default(name)
        ]
        _, mace_errors = mace_arguments(self.mace, self.n_features, self.default('n_features'))
        return errors + mace_errors


class TrainConfig(Section):
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

    train_file: Str = Field('', description='path of the training extxyz file')
    valid_file: Str | None = Field(None, description='path of the validation extxyz file; null = split train_file')
    valid_fraction: Float = Field(0.1, description='[fraction] of train_file held out when valid_file is null')
    keys: DataKeysConfig = Field(default_factory=DataKeysConfig, description='label names in the extxyz files')
    model: ModelConfig = Field(default_factory=ModelConfig, description='architecture of the model')
    reference_energies: Literal['least_squares', 'zero'] = Field(
        'least_squares', description='per-species reference energies E0: fitted to the data or zero'
    )
    refit_reference_energies: Bool = Field(True, description='refit E0 to the residuals after each epoch')
    seed: Int = Field(0, description='[integer] random seed of member 0 (member k uses seed + k)')
    epochs: Int = Field(100, gt=0, description='[passes] over the training set')
    batch_size: Int = Field(4, gt=0, description='[frames] per optimiser step')
    lr: Float = Field(1e-3, gt=0, description='[1] Adam learning rate')
    weight_decay: Float = Field(0.0, ge=0, description='[1] AdamW weight decay')
    scheduler: Literal['plateau', 'cosine', 'none'] = Field('plateau', description='learning-rate schedule')
    warmup_epochs: Float = Field(
        5.0, ge=0, description='[epochs] of linear learning-rate warm-up (at most a tenth of epochs); 0 = none'
    )
    scheduler_patience: Int = Field(10, gt=0, description='[epochs] without improvement before the plateau cut')
    scheduler_factor: Float = Field(0.5, description='[1] learning-rate multiplier of the plateau cut, in (0, 1)')
    min_lr: Float = Field(1e-6, ge=0, description='[1] learning-rate floor')
    early_stopping_patience: Int = Field(0, ge=0, description='[epochs] without improvement before stopping, 0 = off')
    ema_decay: Float = Field(0.99, description='[per step] decay of the weight EMA, in [0, 1); 0 = off')
    train_errors: Literal['ema', 'running'] = Field(
        'ema', description='training errors of the EMA weights after each epoch, or accumulated during it'
    )
    energy_weight: Float = Field(1.0, ge=0, description='[x MSE of energy per atom in eV] loss weight')
    forces_weight: Float = Field(10.0, ge=0, description='[x MSE of forces in eV/Å] loss weight')
    stress_weight: Float = Field(0.0, ge=0, description='[x MSE of stress in eV/Å^3] loss weight')
    dipole_weight: Float = Field(0.0, ge=0, description='[x MSE of dipole in e Å] loss weight')
    bec_weight: Float = Field(0.0, ge=0, description='[x MSE of Born effective charges in e] loss weight')
    grad_clip: Float = Field(10.0, gt=0, description='[1] largest gradient norm')
    checkpoint_every: Int = Field(100, gt=0, description='[optimiser steps] between checkpoints')
    max_walltime: Float = Field(0.0, ge=0, description='[s, 0 = no limit] checkpoint and exit before this time')
    device: Device = Field('auto', description='torch device; auto = CUDA when available')
    dtype: Dtype = Field('float32', description='floating-point precision of training')
    committee_size: Int = Field(1, gt=0, description='[models] trained; member k uses seed + k')
    bootstrap: Bool = Field(False, description='each member trains on a bootstrap resample of the training set')
    init_model: Str | None = Field(None, description='path of a model file to start from (warm start)')
    model_file: Str = Field('model.pt', description='path of the trained model file (.pt)')
    export_file: Str | None = Field(
        None, description='path of the metatomic export (.pt) of the trained committee; null = none'
    )
    progress: Bool = Field(True, description='show a progress bar')

    @model_validator(mode='after')
    def _check(self):
        errors: list[str] = []
        if not self.train_file:
            errors.append('train_file is required (path of an extxyz file)')
        if not 0.0 <= self.valid_fraction < 1.0:
            errors.append(f'valid_fraction must be in [0, 1), got {self.valid_fraction}')
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
        raise_errors(errors)
        return self


#: Largest MD time step accepted [fs]; see :class:`MDConfig`.
MAX_TIMESTEP_FS = 5.0


class MDConfig(Section):
    """Molecular dynamics with a committee of models; stops early when uncertain or unphysical.

    ``temperature`` [K], ``timestep`` [fs], ``friction`` [1/fs] (Langevin), ``taut``/``taup`` [fs],
    ``pressure`` [bar], ``compressibility`` [1/bar] (Berendsen NPT only). ``barostat`` of ``npt``: ``mtk`` (default,
    isotropic Martyna-Tobias-Klein with Nose-Hoover chains, ASE's ``IsotropicMTKNPT``: samples the isothermal-isobaric
    ensemble, thermostat time ``taut``, barostat time ``taup``; every frame carries ``les_conserved_energy`` [eV]) or
    ``berendsen`` (relaxes to the target pressure and temperature quickly but does not sample their fluctuations; for
    equilibration). Stopping bounds, each 0 = off:
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

    models: tuple[Str, ...] = Field((), description='paths of the committee model files')
    structure: Str = Field('', description='path of the starting structure (any file ase reads)')
    total_charge: Float | None = Field(None, description='[e; null = atoms.info or 0] net charge given to the model')
    multiplicity: Int = Field(1, description='[2S+1] spin multiplicity given to the model')
    ensemble: Literal['nvt', 'npt', 'nve'] = Field('nvt', description='nvt: Langevin; npt: see barostat; nve: Verlet')
    barostat: Literal['mtk', 'berendsen'] = Field('mtk', description='barostat of npt')
    temperature: Float = Field(300.0, ge=0, description='[K] target (nvt, npt) or initial (nve) temperature')
    timestep: Float = Field(
        0.5, gt=0, description=f'[fs, at most {MAX_TIMESTEP_FS:g}; <= 1 with hydrogen] integration time step'
    )
    steps: Int = Field(1000, gt=0, description='[MD steps] to run')
    friction: Float = Field(0.01, gt=0, description='[1/fs] Langevin friction')
    taut: Float = Field(100.0, gt=0, description='[fs] thermostat time of npt (MTK or Berendsen)')
    taup: Float = Field(1000.0, gt=0, description='[fs] barostat time of npt (MTK or Berendsen)')
    pressure: Float = Field(1.01325, description='[bar] target pressure of npt')
    compressibility: Float = Field(4.57e-5, gt=0, description='[1/bar] compressibility, Berendsen only')
    write_every: Int = Field(10, gt=0, description='[steps] between frames written')
    trajectory_file: Str = Field('md.extxyz', description='path of the trajectory written (extxyz)')
    summary_file: Str = Field('md_summary.json', description='path of the summary written (JSON)')
    max_force_std: Float = Field(0.0, ge=0, description='[eV/Å] stop above this committee force deviation; 0 = off')
    min_distance: Float = Field(0.5, ge=0, description='[Å] stop below this closest-pair distance; 0 = off')
    max_energy_change: Float = Field(
        5.0, ge=0, description='[eV/atom] stop when the energy moves this far from the first frame; 0 = off'
    )
    device: Device = Field('auto', description='torch device; auto = CUDA when available')
    dtype: Dtype = Field('float64', description='floating-point precision of the models')
    seed: Int = Field(0, description='[integer] random seed of the velocities and the Langevin noise')
    scripted: Bool = Field(False, description='evaluate the models through TorchScript (same numbers)')

    @model_validator(mode='after')
    def _check(self):
        errors: list[str] = []
        if not self.models:
            errors.append('models must list at least one model file')
        if not self.structure:
            errors.append('structure is required (path of a structure file readable by ase)')
        if self.timestep > MAX_TIMESTEP_FS:
            errors.append(
                f'timestep must be <= {MAX_TIMESTEP_FS} fs (about ten steps per period of the fastest vibration; '
                f'<= 1 fs with hydrogen), got {self.timestep} fs'
            )
        if self.multiplicity < 1:
            errors.append(f'multiplicity must be an integer >= 1 (2S+1), got {self.multiplicity!r}')
        if self.ensemble != 'nve' and self.temperature <= 0:
            errors.append(f'temperature must be > 0 for ensemble {self.ensemble!r}, got {self.temperature}')
        raise_errors(errors)
        return self


class EvalConfig(Section):
    """Evaluation of one or several models (a committee) on an extxyz file.

    ``eps_inf`` (dimensionless, optional): high-frequency dielectric constant; predicted Born effective charges are
    divided by ``sqrt(eps_inf)`` (latent charges of a model trained on energies and forces alone are screened
    charges; this turns their Born charges into an estimate of the physical Z*). Leave it unset for a model
    trained on Born-charge or dipole labels.

    With a committee (two or more models) and force labels, the committee's force deviation is calibrated against
    the true force errors (:mod:`les_model.calibration`): ``calibration`` in ``metrics_file`` and a PNG at
    ``calibration_plot`` (empty: no plot).
    """

    models: tuple[Str, ...] = Field((), description='paths of the model files (two or more: a committee)')
    data_file: Str = Field('', description='path of the extxyz file evaluated')
    keys: DataKeysConfig = Field(default_factory=DataKeysConfig, description='label names in the extxyz file')
    predictions_file: Str = Field('predictions.extxyz', description='path of the predictions written (extxyz)')
    metrics_file: Str = Field('metrics.json', description='path of the metrics written (JSON)')
    calibration_plot: Str = Field('calibration.png', description='path of the calibration plot; empty = none')
    batch_size: Int = Field(8, gt=0, description='[frames] per batch')
    compute_bec: Bool = Field(False, description='predict Born effective charges too')
    eps_inf: Float | None = Field(
        None, description='[dimensionless] Born charges divided by its square root; null = not scaled'
    )
    device: Device = Field('auto', description='torch device; auto = CUDA when available')
    dtype: Dtype = Field('float64', description='floating-point precision of the models')

    @model_validator(mode='after')
    def _check(self):
        errors: list[str] = []
        if self.eps_inf is not None and not self.eps_inf > 0:
            errors.append(f'eps_inf must be positive, got {self.eps_inf}')
        if not self.models:
            errors.append('models must list at least one model file')
        if not self.data_file:
            errors.append('data_file is required (path of an extxyz file)')
        raise_errors(errors)
        return self


_KINDS: dict[str, type[Section]] = {
    'model': ModelConfig,
    'train': TrainConfig,
    'md': MDConfig,
    'eval': EvalConfig,
    'evaluate': EvalConfig,
}


def config_class(kind: str) -> type[Section]:
    """Return the section of ``kind`` (``'model'``, ``'train'``, ``'md'``, ``'eval'``)."""
    if kind not in _KINDS:
        raise ValueError(f'kind must be one of {sorted(_KINDS)}, got {kind!r}')
    return _KINDS[kind]


def validate_config(mapping: Mapping[str, Any] | None, kind: str) -> list[str]:
    """Check a configuration mapping without computing anything.

    :param mapping: the configuration as read from YAML (or an AiiDA ``Dict``).
    :param kind: ``'model'``, ``'train'``, ``'md'`` or ``'eval'``.
    :return: one message per problem; empty when the configuration is valid.
    """
    return section_errors(config_class(kind), mapping)


def load_config(source: Mapping[str, Any] | str | Path, kind: str) -> Section:
    """Return the validated configuration of ``kind`` from a mapping or a YAML file.

    :raises ConfigError: listing every problem.
    """
    cls = config_class(kind)
    if isinstance(source, Mapping):
        return cls.from_dict(source)
    return cls.from_yaml(source)
