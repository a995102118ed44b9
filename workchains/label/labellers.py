"""Labellers of ``les.label``: how each reference method is run on one structure and on a batch.

A labeller names its input namespace in ``les.label`` (the exposed inputs of its single-structure process), checks a
structure before anything runs, and builds the inputs of a job for one structure or for a batch. The built-in ones
are ``cp2k`` (``les.cp2k.base`` per structure, restarts included; no batches yet) and ``ase`` (``les.ase_label``
for one structure and for a batch). Others are found through the entry-point group ``aiida_les.labellers``
(``name = 'module:Class'``), so ``les.label`` and the campaign hold no list of labellers of their own.
"""

from __future__ import annotations

import functools
import typing as t
from importlib.metadata import entry_points

from aiida import orm
from aiida.common import AttributeDict
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_les.calculations.ase_label import check_ase_inputs
from aiida_les.labelling.validation import check_structure

__all__ = ('AseLabeller', 'Cp2kLabeller', 'Labeller', 'get_labeller', 'get_labellers')

ENTRY_POINT_GROUP = 'aiida_les.labellers'


class Labeller:
    """One reference method: its namespace in ``les.label`` and how its jobs are built.

    :cvar name: the value of ``les.label``'s ``labeller`` input and the name of its input namespace.
    :cvar exclude: inputs of the single-structure process that ``les.label`` sets per structure.
    :cvar batches: whether :meth:`batch_class` can label several structures in one job.
    """

    name: t.ClassVar[str]
    exclude: t.ClassVar[tuple[str, ...]]
    batches: t.ClassVar[bool] = False

    @classmethod
    def process_class(cls):
        """The process that labels one structure (its inputs are exposed in the namespace ``name``)."""
        raise NotImplementedError

    @classmethod
    def batch_class(cls):
        """The CalcJob that labels a batch (``structures`` in, ``labels`` out)."""
        raise NotImplementedError

    @classmethod
    def calcjob_inputs(cls, namespace: t.Mapping) -> t.Mapping:
        """The CalcJob inputs inside the labeller's namespace (the namespace itself unless it wraps a workchain)."""
        return namespace

    @classmethod
    def precheck(cls, atoms, namespace: t.Mapping, total_charge: int, multiplicity: int) -> str | None:
        """Return why ``atoms`` would be refused (None if it can be labelled); nothing runs."""
        raise NotImplementedError

    @classmethod
    def populate_builder(cls, builder, code, protocol_inputs: dict, options: dict | None, calculator: dict | None):
        """Fill the labeller's namespace of a ``les.label`` builder from the ``label.yaml`` protocol inputs."""
        raise NotImplementedError

    @classmethod
    def single(cls, inputs: AttributeDict, structure, charge: int | None, multiplicity: int | None):
        """Return ``(process, inputs)`` labelling ``structure``; ``inputs`` are the exposed inputs of ``name``."""
        target = cls._target(inputs)
        target.structure = structure
        _set_charge(target, charge, multiplicity)
        return cls.process_class(), inputs

    @classmethod
    def batch(cls, inputs: AttributeDict, structures: dict, charge: int | None, multiplicity: int | None):
        """Return ``(CalcJob, inputs)`` labelling ``structures`` (``{key: StructureData}``) in one job."""
        calcjob = AttributeDict(cls._target(inputs))
        calcjob.structures = structures
        _set_charge(calcjob, charge, multiplicity)
        return cls.batch_class(), calcjob

    @classmethod
    def _target(cls, inputs: AttributeDict) -> AttributeDict:
        return inputs


def _set_charge(target: AttributeDict, charge: int | None, multiplicity: int | None) -> None:
    if charge is not None:
        target.total_charge = orm.Int(charge)
    if multiplicity is not None:
        target.multiplicity = orm.Int(multiplicity)


class Cp2kLabeller(Labeller):
    """CP2K through ``les-cp2k``: one structure per job with restarts (``les.cp2k.base``).

    Batches (CP2K FARMING of the labels in one job, as the Born-charge path does for its displacements) are not
    implemented yet: ``les.label`` refuses a ``batch_size`` above 1 with this labeller.
    """

    name = 'cp2k'
    exclude = ('cp2k.structure',)

    @classmethod
    def process_class(cls):
        """``les.cp2k.base``."""
        return WorkflowFactory('les.cp2k.base')

    @classmethod
    def calcjob_inputs(cls, namespace: t.Mapping) -> t.Mapping:
        """The ``cp2k`` sub-namespace of ``les.cp2k.base``."""
        return namespace.get('cp2k') or {}

    @classmethod
    def precheck(cls, atoms, namespace: t.Mapping, total_charge: int, multiplicity: int) -> str | None:
        """The structure checks of the CP2K protocol (:func:`~aiida_les.labelling.validation.check_structure`)."""
        if 'parameters' not in namespace:
            return None
        return check_structure(atoms, namespace['parameters'].get_dict(), total_charge, multiplicity)

    @classmethod
    def populate_builder(cls, builder, code, protocol_inputs: dict, options: dict | None, calculator: dict | None):
        """The ``les.cp2k.base`` protocol named by ``cp2k_protocol``, with the overrides under ``cp2k``."""
        base = cls.process_class().get_protocol_inputs(protocol_inputs['cp2k_protocol'], protocol_inputs.get('cp2k'))
        cp2k = base['cp2k']
        builder.max_iterations = orm.Int(base['max_iterations'])
        builder.clean_workdir = orm.Bool(base['clean_workdir'])
        builder.cp2k.code = code
        builder.cp2k.parameters = orm.Dict(cp2k['parameters'])
        builder.cp2k.settings = orm.Dict(cp2k['settings'])
        builder.cp2k.metadata.options = {**cp2k['metadata']['options'], **(options or {})}

    @classmethod
    def _target(cls, inputs: AttributeDict) -> AttributeDict:
        inputs.cp2k = AttributeDict(inputs.cp2k)
        return inputs.cp2k


class AseLabeller(Labeller):
    """Any ASE calculator through ``les-ase-label`` (``les.ase_label``), one structure or a batch."""

    name = 'ase'
    exclude = ('structure', 'structures')
    batches = True

    @classmethod
    def process_class(cls):
        """``les.ase_label``."""
        return CalculationFactory('les.ase_label')

    @classmethod
    def batch_class(cls):
        """``les.ase_label``."""
        return CalculationFactory('les.ase_label')

    @classmethod
    def populate_builder(cls, builder, code, protocol_inputs: dict, options: dict | None, calculator: dict | None):
        """The code, the calculator description and the job options (the CP2K protocols do not apply)."""
        if calculator is None:
            raise ValueError('The `ase` labeller needs a `calculator` description (import_path, kwargs...).')
        builder.code = code
        builder.calculator = orm.Dict(calculator)
        builder.metadata.options = {'resources': {'num_machines': 1}, **(options or {})}

    @classmethod
    def precheck(cls, atoms, namespace: t.Mapping, total_charge: int, multiplicity: int) -> str | None:
        """Geometry, charge parity and the calculator's charge/spin keywords (:func:`check_ase_inputs`)."""
        if 'calculator' not in namespace:
            return None
        return check_ase_inputs(atoms, namespace['calculator'].get_dict(), total_charge, multiplicity)


_BUILT_IN = {'cp2k': Cp2kLabeller, 'ase': AseLabeller}


@functools.cache
def get_labellers() -> dict[str, type[Labeller]]:
    """Return the labellers by name: the entry points of ``aiida_les.labellers`` over the built-in ones.

    The built-ins stay available when the installed package metadata predates the entry points (an editable
    install whose ``pyproject.toml`` changed since).
    """
    labellers = dict(_BUILT_IN)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        labellers[entry_point.name] = entry_point.load()
    return labellers


def get_labeller(name: str) -> type[Labeller]:
    """Return the labeller called ``name``.

    :raises ValueError: if no labeller has that name.
    """
    labellers = get_labellers()
    if name not in labellers:
        raise ValueError(f'Unknown labeller `{name}`; expected one of {sorted(labellers)}.')
    return labellers[name]
