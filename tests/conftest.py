"""Shared pytest fixtures: AiiDA's own fixtures plus QE-style factories for CalcJobs, parsers and workchains."""

from __future__ import annotations

import collections.abc
import os
import pathlib
import shutil
import sys

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

# Tests run many small torch ops; one thread avoids oversubscribing the 2-core CI machine.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
# CP2K runs under mpirun; Open MPI refuses root without these.
os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT', '1')
os.environ.setdefault('OMPI_ALLOW_RUN_AS_ROOT_CONFIRM', '1')


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests on machines without CUDA (they still run wherever a GPU is present)."""
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip_gpu)


def which(executable: str) -> str | None:
    """Find ``executable`` on PATH or next to this Python (the venv's programs when the venv is not activated)."""
    return shutil.which(executable) or shutil.which(executable, path=str(pathlib.Path(sys.executable).parent))


@pytest.fixture(scope='session')
def find_executable():
    """Return :func:`which`, for tests that register codes with the real programs."""
    return which


@pytest.fixture(scope='session')
def filepath_tests() -> pathlib.Path:
    """Return the absolute path of the ``tests`` directory."""
    return pathlib.Path(__file__).resolve().parent


@pytest.fixture
def fixture_code(aiida_code_installed):
    """Return a factory for an ``InstalledCode`` on localhost for a given plugin entry point.

    The executable is the real program when it is on PATH (our ``les-*`` programs, ``cp2k.psmp``), ``/bin/true``
    otherwise, which is enough for tests that only write input files.
    """

    def factory(entry_point_name: str, executable: str | None = None):
        filepath = which(executable) if executable else None
        # The label names the executable too, so a `/bin/true` stand-in is never reused as the real program.
        return aiida_code_installed(
            label=f'{entry_point_name.replace(".", "-")}-{pathlib.Path(filepath or "true").name}',
            default_calc_job_plugin=entry_point_name,
            filepath_executable=filepath or '/bin/true',
        )

    return factory


@pytest.fixture
def generate_structure():
    """Return a factory for small ``StructureData`` nodes: ``'NaCl'`` rocksalt (8 atoms), ``'H2O'`` molecule."""

    def factory(name: str = 'NaCl'):
        from aiida import orm
        from ase.build import bulk, molecule

        if name == 'NaCl':
            atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        elif name == 'H2O':
            atoms = molecule('H2O')
            atoms.center(vacuum=4.0)
            atoms.pbc = False
        else:
            raise ValueError(f'unknown test structure {name!r}')
        return orm.StructureData(ase=atoms)

    return factory


@pytest.fixture
def generate_dataset():
    """Return a factory for a LesDatasetData of rattled NaCl cells labelled with Lennard-Jones (eV, eV/Å)."""

    def factory(n_frames: int = 3, seed: int = 0):
        from aiida_les.data.dataset import LesDatasetData
        from les_model.testing.structures import lennard_jones_nacl_frames

        return LesDatasetData.from_ase(lennard_jones_nacl_frames(n_frames, seed))

    return factory


@pytest.fixture
def generate_calc_job(tmp_path):
    """Return a factory that runs ``prepare_for_submission`` of a CalcJob and returns its folder and ``CalcInfo``."""

    def factory(entry_point_name: str, inputs: dict, return_process: bool = False):
        from aiida.common.folders import Folder
        from aiida.engine.utils import instantiate_process
        from aiida.manage.manager import get_manager
        from aiida.plugins import CalculationFactory

        folder = Folder(str(tmp_path))
        process = instantiate_process(get_manager().get_runner(), CalculationFactory(entry_point_name), **inputs)
        calc_info = process.prepare_for_submission(folder)
        if return_process:
            return process
        return folder, calc_info

    return factory


@pytest.fixture
def generate_calc_job_node(fixture_code):
    """Return a factory for a stored ``CalcJobNode`` with a ``retrieved`` folder copied from a recorded test folder.

    ``filepath_folder`` holds the files a real run left behind (``tests/parsers/fixtures/<calc>/<case>``).
    """

    def factory(entry_point_name: str, filepath_folder: pathlib.Path | None = None, inputs: dict | None = None):
        from aiida import orm
        from aiida.common import LinkType
        from aiida.plugins.entry_point import format_entry_point_string

        node = orm.CalcJobNode(
            computer=fixture_code(entry_point_name).computer,
            process_type=format_entry_point_string('aiida.calculations', entry_point_name),
        )
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        node.set_option('max_wallclock_seconds', 1800)
        for link_label, input_node in (inputs or {}).items():
            input_node.store()
            node.base.links.add_incoming(input_node, link_type=LinkType.INPUT_CALC, link_label=link_label)
        node.store()
        if filepath_folder is not None:
            retrieved = orm.FolderData()
            retrieved.base.repository.put_object_from_tree(str(filepath_folder))
            retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
            retrieved.store()
        return node

    return factory


@pytest.fixture
def generate_workchain():
    """Return a factory that instantiates a workchain with given inputs without running it (step-level tests)."""

    def factory(entry_point: str, inputs: dict):
        from aiida.engine.utils import instantiate_process
        from aiida.manage.manager import get_manager
        from aiida.plugins import WorkflowFactory

        return instantiate_process(get_manager().get_runner(), WorkflowFactory(entry_point), **inputs)

    return factory


@pytest.fixture
def serialize_builder():
    """Return a function that turns a process builder into a plain, regression-friendly dictionary."""

    def serialize(builder) -> dict:
        from aiida import orm

        def to_plain(value):
            if isinstance(value, collections.abc.Mapping):
                return {key: to_plain(sub) for key, sub in value.items()}
            if isinstance(value, orm.AbstractCode):
                return value.full_label
            if isinstance(value, orm.Dict):
                return value.get_dict()
            if isinstance(value, orm.List):
                return value.get_list()
            if isinstance(value, orm.BaseType):
                return value.value
            if isinstance(value, orm.StructureData):
                return value.get_formula()
            if isinstance(value, orm.Node):
                return type(value).__name__
            return value

        return to_plain(builder._inputs(prune=True))

    return serialize


def _in_process(command):
    """Return a function that invokes click ``command`` in this process and returns the click result.

    A ``verdi``-style command reconfigures logging for a terminal (no database handler) once per process; that is undone
    afterwards, so later tests still find their processes' report lines in the database.
    """
    from aiida.common import log
    from click.testing import CliRunner

    def invoke(*args):
        active, level = log.CLI_ACTIVE, log.CLI_LOG_LEVEL
        try:
            return CliRunner().invoke(command, [str(arg) for arg in args], catch_exceptions=False)
        finally:
            log.CLI_ACTIVE, log.CLI_LOG_LEVEL = active, level
            log.configure_logging(with_orm=True)

    return invoke


@pytest.fixture
def run_aiida_les():
    """Return a function that invokes the ``aiida-les`` command in this process (:func:`_in_process`)."""
    from aiida_les.cli import cmd_root

    return _in_process(cmd_root)


@pytest.fixture
def run_verdi():
    """Return a function that invokes ``verdi`` in this process (``verdi data les ...`` goes through the plugin)."""
    from aiida.cmdline.commands.cmd_verdi import verdi

    return _in_process(verdi)


@pytest.fixture
def campaign_codes(fixture_code):
    """Codes of a campaign; nothing runs, so the executables only need to exist."""
    return {
        'train': fixture_code('les.train', 'les-train'),
        'md': fixture_code('les.md', 'les-md'),
        'evaluate': fixture_code('les.evaluate', 'les-eval'),
        'label': fixture_code('les.cp2k', 'les-cp2k'),
    }


@pytest.fixture
def generate_campaign_node(campaign_codes, generate_structure, generate_dataset, generate_workchain):
    """Return a factory for a stored ``les.active_learning`` node with the children a real campaign leaves.

    The campaign has real inputs (``fast`` protocol, one NaCl seed), labelled its 4 initial frames (2 held out) and ran
    ``complete`` generations of 3 labels each (2 models, 1 MD run, evaluation, selection, labelling, merge). With
    ``interrupted=True`` the next generation stopped after training (the campaign stays ``waiting``, as when its
    process is killed); otherwise the campaign finished with its outputs. Datasets carry the level of theory of the
    ``fast`` CP2K labels.
    """

    def factory(complete: int = 1, interrupted: bool = False, parameters: dict | None = None):
        import io

        from aiida import orm
        from aiida.common.links import LinkType
        from aiida.engine import ProcessState
        from aiida.plugins import DataFactory, WorkflowFactory

        from workchains.active_learning.restart import label_level_of_theory

        dataset_class, model_class = DataFactory('les.dataset'), DataFactory('les.model')
        builder = WorkflowFactory('les.active_learning').get_builder_from_protocol(
            campaign_codes,
            {'nacl': generate_structure('NaCl')},
            protocol='fast',
            overrides={'parameters': parameters or {}},
        )
        level = label_level_of_theory(builder.label)
        campaign = generate_workchain('les.active_learning', builder._inputs(prune=True)).node
        counter = iter(range(10_000))

        def dataset(n_frames: int, labelled: bool = True):
            frames = generate_dataset(n_frames, seed=100 * next(counter)).get_ase()
            for atoms in frames:
                if labelled:
                    atoms.info['level_of_theory'] = level
            return dataset_class.from_ase(frames)

        def child(node_class, link_label: str, outputs: dict, exit_status: int | None = 0):
            is_work = issubclass(node_class, orm.WorkflowNode)
            node = node_class()
            if exit_status is None:
                node.set_process_state(ProcessState.WAITING)
            else:
                node.set_process_state(ProcessState.FINISHED)
                node.set_exit_status(exit_status)
            call = LinkType.CALL_WORK if is_work else LinkType.CALL_CALC
            node.base.links.add_incoming(campaign, call, link_label)
            node.store()
            for name, output in outputs.items():
                if is_work:  # a workflow returns data created elsewhere
                    output.store()
                output.base.links.add_incoming(node, LinkType.RETURN if is_work else LinkType.CREATE, name)
                output.store()
            return node

        def train(generation: int, member: int):
            model = model_class(io.BytesIO(f'model {generation} {member}'.encode()), model_config={})
            metrics = orm.Dict({'final': {'valid': {'forces_rmse': 300.0}}})
            link = f'generation_{generation:02d}_train_{member}'
            return child(orm.WorkflowNode, link, {'model': model, 'metrics': metrics}).outputs.model

        initial = dataset(4)
        child(orm.WorkflowNode, 'initial_labels', {'labelled': initial})
        split = child(orm.CalcFunctionNode, 'split_initial', {'train': dataset(2), 'validation': dataset(2)})
        current, models, rows = split.outputs.train, [], []
        for generation in range(complete):
            models = [train(generation, member) for member in range(2)]
            prefix = f'generation_{generation:02d}'
            child(orm.WorkflowNode, f'{prefix}_md_nacl_300K', {'output_parameters': orm.Dict({})})
            metrics = orm.Dict({'errors': {'forces_rmse': 250.0, 'energy_per_atom_rmse': 12.0}})
            child(orm.CalcJobNode, f'{prefix}_evaluate', {'metrics': metrics})
            report = {'n_frames': 21, 'accurate_fraction': 0.5, 'counts': {'candidate': 10}}
            child(orm.CalcFunctionNode, f'{prefix}_select', {'report': orm.Dict(report), 'selected': dataset(3, False)})
            labels = dataset(3)
            label_report = orm.Dict({'n_failed': 0, 'failures': []})
            child(orm.WorkflowNode, f'{prefix}_label', {'labelled': labels, 'report': label_report})
            frames = current.get_ase() + labels.get_ase()
            merge = child(orm.CalcFunctionNode, f'{prefix}_merge', {'result': dataset_class.from_ase(frames)})
            current = merge.outputs.result
            rows.append({'generation': generation, 'n_labelled': 3, 'accurate_fraction': 0.5, 'stopping': 'stop'})
        if interrupted:
            for member in range(2):
                train(complete, member)
            campaign.set_process_state(ProcessState.WAITING)
            return campaign
        for index, model in enumerate(models):
            model.base.links.add_incoming(campaign, LinkType.RETURN, f'models__member_{index}')
        current.base.links.add_incoming(campaign, LinkType.RETURN, 'dataset')
        split.outputs.validation.base.links.add_incoming(campaign, LinkType.RETURN, 'validation_dataset')
        summary = {'stop_reason': 'max_generations', 'n_generations': complete, 'generations': rows}
        summary = child(orm.CalcFunctionNode, 'summary', {'result': orm.Dict(summary)}).outputs.result
        summary.base.links.add_incoming(campaign, LinkType.RETURN, 'summary')
        campaign.set_process_state(ProcessState.FINISHED)
        campaign.set_exit_status(0)
        campaign.seal()
        return campaign

    return factory
