"""Bad inputs, in one place: each enters through a user-facing entry point and ends with a clear message before any
process is launched (no process node is created) or any program computes anything.

Entry points: ``get_builder_from_protocol`` of ``les.active_learning`` and ``les.label`` followed by ``run`` (the
campaign's input validators refuse it, so nothing runs), ``LesDatasetData``, ``LesModelData``,
``les_model.io.load_model`` and the ``les-train`` program.
"""

from __future__ import annotations

import contextlib
import io
import pathlib

import numpy as np
import pytest
import torch
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk, molecule

from aiida_les.data.dataset import LesDatasetData
from aiida_les.data.model import LesModelData
from les_model.cli import train
from les_model.cli.exit_codes import ExitCode
from les_model.io import FORMAT_VERSION, IncompatibleModelError, load_model
from workchains.active_learning import LesActiveLearningWorkChain
from workchains.active_learning.restart import label_level_of_theory
from workchains.label.label import LesLabelWorkChain


def _process_count() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode).count()


def assert_refused_before_launch(launch, match: str) -> None:
    """``launch()`` raises ValueError matching ``match`` and no process node (workflow or calculation) was created."""
    before = _process_count()
    with pytest.raises(ValueError, match=match):
        launch()
    assert _process_count() == before, 'a process was launched before the input was refused'


@pytest.fixture
def launch_campaign(campaign_codes):
    """Return ``launch(seed_atoms, protocol, overrides, **kwargs)``: build the campaign builder and ``run`` it."""

    def launch(atoms=None, protocol='fast', overrides=None, **kwargs):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True) if atoms is None else atoms
        structures = {'seed': orm.StructureData(ase=atoms)}
        builder = LesActiveLearningWorkChain.get_builder_from_protocol(
            campaign_codes, structures, protocol=protocol, overrides=overrides, **kwargs
        )
        return run_get_node(builder)

    return launch


def _nacl(edit=None):
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    if edit:
        edit(atoms)
    return atoms


def _water():
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    return atoms


def _overlap(atoms):
    atoms.positions[1] = atoms.positions[0] + [0.1, 0.0, 0.0]


def _nan(atoms):
    atoms.positions[3, 1] = np.nan


def _flat_cell(atoms):
    atoms.set_cell([[5.64, 0, 0], [0, 5.64, 0], [5.64, 0, 0]])


def _substitute(symbol):
    def edit(atoms):
        atoms.symbols[0] = symbol

    return edit


SEED_CASES = {
    'overlapping atoms': (_nacl(_overlap), 'fast', {}, r'Seed structure `seed` cannot be labelled: Overlapping atoms'),
    'NaN positions': (_nacl(_nan), 'fast', {}, r'Non-finite \(NaN or inf\) positions for atoms \[3\]'),
    'zero-volume cell': (_nacl(_flat_cell), 'fast', {}, 'periodic but its cell has zero volume'),
    'element beyond GFN1-xTB (fast)': (_nacl(_substitute('U')), 'fast', {}, r"no parameters for elements \['U'\]"),
    'element without basis set (balanced)': (
        _nacl(_substitute('Cu')),
        'balanced',
        {},
        r"Protocol `balanced` has no basis set/pseudopotential for elements \['Cu'\]",
    ),
    'multiplicity impossible for the electrons': (
        _water(),
        'fast',
        {'multiplicities': {'seed': 2}},
        'Multiplicity 2 impossible for 10 electrons',
    ),
    'charge leaves an odd electron count at singlet': (
        _water(),
        'fast',
        {'total_charges': {'seed': 1}},
        r'Multiplicity 1 impossible for 9 electrons \(total charge 1\)',
    ),
    'charge given for a seed that does not exist': (
        _water(),
        'fast',
        {'total_charges': {'sead': -1}},
        r"`parameters.total_charges` names \['sead'\], which are not seed labels",
    ),
    'NPT exploration stage for a molecule': (
        _water(),
        'fast',
        {'exploration_schedule': [{'temperatures': [300.0]}, {'temperatures': [300.0], 'pressure': 1000.0}]},
        'exploration_schedule stage 1 of seed `seed`: a pressure needs a seed periodic in three directions',
    ),
}


@pytest.mark.parametrize('case', list(SEED_CASES))
def test_campaign_refuses_bad_seed(launch_campaign, case):
    """Invalid structures, elements and charge/multiplicity: the campaign's validator names the seed and the reason."""
    atoms, protocol, parameters, match = SEED_CASES[case]
    overrides = {'parameters': parameters} if parameters else None
    assert_refused_before_launch(lambda: launch_campaign(atoms.copy(), protocol, overrides), match)


OVERRIDE_CASES = {
    'unknown namespace': ({'lable': {}}, r"Unknown override namespaces \['lable'\]"),
    'unknown label key': ({'label': {'max_concurent': 2}}, 'Unknown override key `max_concurent`'),
    'unknown train key': ({'train': {'train': {'confg': {}}}}, 'Unknown override key `train.confg`'),
    'unknown md key': ({'md': {'md': {'cnfig': {}}}}, 'Unknown override key `md.cnfig`'),
    'unknown campaign parameter': (
        {'parameters': {'comittee_size': 3}},
        r"Unknown campaign parameters \['comittee_size'\]",
    ),
}


@pytest.mark.parametrize('case', list(OVERRIDE_CASES))
def test_campaign_refuses_unknown_override_keys(launch_campaign, case):
    overrides, match = OVERRIDE_CASES[case]
    assert_refused_before_launch(lambda: launch_campaign(overrides=overrides), match)


PARAMETER_CASES = {
    # The fast protocol labels 1 seed + 3 copies = 4 initial frames first.
    'label budget below the initial frames': (
        {'label_budget': 2},
        r'`parameters.label_budget` 2 is smaller than the 4 initial frames \(1 seed\(s\) x \(1 \+ n_initial_copies 3',
    ),
    'held-out set as large as the initial frames': (
        {'n_validation': 4},
        r'`parameters.n_validation` 4 would hold out all of the 4 initial frames .*, leaving none to train on: '
        'use at most 3',
    ),
    'held-out set larger than the initial frames': (
        {'n_validation': 10},
        '`parameters.n_validation` 10 would hold out',
    ),
    'non-integer label budget': (
        {'label_budget': 2.5},
        r'`parameters.label_budget` must be an integer, got 2.5 \(float\)',
    ),
    'temperatures not a list': (
        {'temperatures': 300.0},
        r'`parameters.temperatures` must be a list of numbers, got 300.0 \(float\)',
    ),
    'committee size as text': (
        {'committee_size': '4'},
        r"`parameters.committee_size` must be an integer, got '4' \(str\)",
    ),
    'held-out fraction of all labels': ({'heldout_fraction': 1.0}, r'heldout_fraction must be in \[0, 1\), got 1.0'),
    'schedule stage without temperatures': (
        {'exploration_schedule': [{'pressure': 1.0}]},
        'exploration_schedule stage 0 of seed `seed`: `temperatures` must be a non-empty list of kelvin',
    ),
    'warm start as text': ({'warm_start': 'yes'}, r"`parameters.warm_start` must be true or false, got 'yes' \(str\)"),
    'charge per seed not an integer': (
        {'total_charges': {'seed': 'minus one'}},
        r"`parameters.total_charges` must be a mapping of seed label to integer, got \{'seed': 'minus one'\}",
    ),
}


@pytest.mark.parametrize('case', list(PARAMETER_CASES))
def test_campaign_refuses_bad_parameters(launch_campaign, case):
    """Wrong types and a budget or held-out set the initial frames do not fit: one sentence naming key and value."""
    parameters, match = PARAMETER_CASES[case]
    assert_refused_before_launch(lambda: launch_campaign(overrides={'parameters': parameters}), match)


PROGRAM_CASES = {
    'unphysical MD time step': (
        {'md': {'md': {'config': {'timestep': 50.0}}}},
        r'`md` inputs: .*timestep must be <= 5.0 fs',
    ),
    'no training epochs': ({'train': {'train': {'config': {'epochs': 0}}}}, r'`train` inputs: .*epochs must be > 0'),
    'unknown MACE option': (
        {'train': {'train': {'config': {'model': {'backbone': 'mace', 'mace': {'max_l': 2}}}}}},
        r"`train` inputs: .*mace: unknown key 'max_l'; allowed keys are \[.*'max_L'",
    ),
    'mpnn setting on the MACE host': (
        {'train': {'train': {'config': {'model': {'backbone': 'mace', 'n_radial': 6}}}}},
        r'`train` inputs: .*n_radial \(= 6\) applies to the mpnn backbone only; with mace use mace.num_radial_basis',
    ),
    'evaluation batch size': (
        {'evaluate': {'config': {'batch_size': -1}}},
        r'`evaluate` inputs: .*batch_size must be > 0',
    ),
}


@pytest.mark.parametrize('case', list(PROGRAM_CASES))
def test_campaign_refuses_bad_program_configuration(launch_campaign, case):
    """A configuration les-md/les-train/les-eval would refuse stops the campaign at launch, not after the labels."""
    overrides, match = PROGRAM_CASES[case]
    assert_refused_before_launch(lambda: launch_campaign(overrides=overrides), match)


def test_campaign_refuses_held_out_element_missing_from_dataset(launch_campaign, campaign_codes, generate_dataset):
    """A held-out frame with an element the training set lacks would fail the first training (exit 401)."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'seed': orm.StructureData(ase=_nacl())}, protocol='fast'
    )
    level = label_level_of_theory(builder.label)
    dataset = _dataset_at(generate_dataset, level)
    frames = _dataset_at(generate_dataset, level).get_ase()
    frames[1].symbols[0] = 'K'
    held_out = LesDatasetData.from_ase(frames)
    assert_refused_before_launch(
        lambda: launch_campaign(dataset=dataset, validation_dataset=held_out),
        r"`validation_dataset` has elements \['K'\] that `dataset` lacks \(it has \['Cl', 'Na'\]\)",
    )
    assert_refused_before_launch(
        lambda: launch_campaign(_nacl(_substitute('K')), dataset=dataset, validation_dataset=dataset),
        r"Seed structure `seed` has elements \['K'\] that `dataset` lacks",
    )


def test_label_refuses_unknown_override_keys(fixture_code, generate_structure):
    code = fixture_code('les.cp2k', 'les-cp2k')

    def launch():
        builder = LesLabelWorkChain.get_builder_from_protocol(
            code, [generate_structure('H2O')], 'fast', overrides={'cp2k': {'max_iteration': 2}}
        )
        return run_get_node(builder)

    assert_refused_before_launch(launch, 'Unknown override key `cp2k.max_iteration`')


def _dataset_at(generate_dataset, level: str) -> LesDatasetData:
    frames = generate_dataset(3).get_ase()
    for atoms in frames:
        atoms.info['level_of_theory'] = level
    return LesDatasetData.from_ase(frames)


def test_campaign_refuses_dataset_of_another_level_of_theory(launch_campaign, generate_dataset):
    """Labels of the campaign's protocol could never be merged into a dataset computed at another level."""
    dataset = _dataset_at(generate_dataset, 'cp2k/balanced/PBE-D3(BJ)#0123456789')
    held_out = _dataset_at(generate_dataset, 'cp2k/balanced/PBE-D3(BJ)#0123456789')
    assert_refused_before_launch(
        lambda: launch_campaign(dataset=dataset, validation_dataset=held_out),
        'dataset was labelled at `cp2k/balanced/PBE-D3\\(BJ\\)#0123456789` but the `label` inputs label at `cp2k/fast',
    )


def test_campaign_refuses_held_out_set_of_another_level_of_theory(launch_campaign, campaign_codes, generate_dataset):
    """Training and held-out sets at different levels of theory: every held-out error would be meaningless."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'seed': orm.StructureData(ase=_nacl())}, protocol='fast'
    )
    level = label_level_of_theory(builder.label)
    dataset = _dataset_at(generate_dataset, level)
    held_out = _dataset_at(generate_dataset, 'ase/EMT#0123456789')
    assert_refused_before_launch(
        lambda: launch_campaign(dataset=dataset, validation_dataset=held_out),
        '`validation_dataset` was labelled at `ase/EMT#0123456789` but `dataset` at `cp2k/fast',
    )


@pytest.mark.parametrize('with_datasets', [False, True], ids=['seeds only', 'with datasets'])
def test_campaign_accepts_good_input(campaign_codes, generate_dataset, generate_workchain, with_datasets):
    """Control: the same entry point with a valid seed (and datasets at the labels' level of theory) passes."""
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'seed': orm.StructureData(ase=_nacl())}, protocol='fast'
    )
    if with_datasets:
        level = label_level_of_theory(builder.label)
        builder.dataset = _dataset_at(generate_dataset, level)
        builder.validation_dataset = _dataset_at(generate_dataset, level)
    process = generate_workchain('les.active_learning', builder._inputs(prune=True))
    assert process.node.pk is not None


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_every_protocol_accepts_a_single_seed(campaign_codes, generate_workchain, protocol):
    """Each protocol's label budget and held-out set fit the initial frames of one seed (water: every protocol has
    basis sets for H and O).
    """
    builder = LesActiveLearningWorkChain.get_builder_from_protocol(
        campaign_codes, {'seed': orm.StructureData(ase=_water())}, protocol=protocol
    )
    process = generate_workchain('les.active_learning', builder._inputs(prune=True))
    assert process.node.pk is not None


def test_label_excludes_bad_structure_before_any_calculation(fixture_code):
    """les.label is a batch tool: a structure its labeller refuses is excluded with the reason, before any CalcJob."""
    atoms = _water()
    atoms.positions[2] = atoms.positions[0] + [0.2, 0.0, 0.0]
    builder = LesLabelWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k', 'les-cp2k'), [orm.StructureData(ase=atoms)], 'fast'
    )
    calcjobs = orm.QueryBuilder().append(orm.CalcJobNode).count()
    results, node = run_get_node(builder)
    assert node.exit_status == LesLabelWorkChain.exit_codes.ERROR_ALL_LABELS_FAILED.status
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == calcjobs
    failure = results['report']['failures'][0]
    assert failure['index'] == 0
    assert failure['reason'].startswith('refused: Overlapping atoms: atoms 0 and 2 are 0.200 Å apart')


def _labelled_frames(n: int = 2, level: str = 'cp2k/fast/GFN1-xTB#0123456789') -> list:
    frames = []
    for index in range(n):
        atoms = _nacl()
        atoms.rattle(0.05, seed=index)
        atoms.info['energy'] = -1.0 * index
        atoms.arrays['forces'] = np.zeros((len(atoms), 3))
        atoms.info['level_of_theory'] = level
        frames.append(atoms)
    return frames


DATASET_CASES = {
    'malformed extxyz (atom count)': (
        lambda: LesDatasetData(io.BytesIO(b'2\nPBC="F F F"\nNa 0 0 0\n')),
        'Not a readable',
    ),
    'malformed extxyz (not a number)': (
        lambda: LesDatasetData(io.BytesIO(b'1\nProperties=species:S:1:pos:R:3\nNa 0 zero 0\n')),
        'Not a readable extxyz dataset',
    ),
    'NaN positions': (
        lambda: LesDatasetData.from_ase([_nacl(_nan)]),
        'Frame 0 has non-finite positions',
    ),
    'mixed levels of theory': (
        lambda: LesDatasetData.from_ase(_labelled_frames(1) + _labelled_frames(1, 'cp2k/balanced/PBE#9876543210')),
        'must not mix levels of theory',
    ),
}


@pytest.mark.parametrize('case', list(DATASET_CASES))
def test_dataset_refuses(case):
    make, match = DATASET_CASES[case]
    assert_refused_before_launch(make, match)


@pytest.fixture
def model_of_another_version(tmp_path):
    """A model file written by a les_model whose file format is one version ahead of this one."""
    path = tmp_path / 'future.pt'
    torch.save({'format_version': FORMAT_VERSION + 1, 'les_model_version': '9.0.0', 'model_config': {}}, path)
    return path


def test_model_of_another_version_refused_on_loading(model_of_another_version):
    match = f'model file format version {FORMAT_VERSION + 1} is not supported'
    assert_refused_before_launch(lambda: LesModelData(model_of_another_version), f'^future.pt: {match}')
    with pytest.raises(IncompatibleModelError, match=match):
        load_model(model_of_another_version)


def test_les_train_refuses_model_of_another_version(model_of_another_version, generate_dataset, tmp_path, monkeypatch):
    """``init_model`` from another format version: exit status 5 and one line naming it, before any data is read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'train.extxyz').write_bytes(generate_dataset(2).get_content(mode='rb'))
    (tmp_path / 'train.yaml').write_text(f'train_file: train.extxyz\ninit_model: {model_of_another_version}\n')
    _assert_les_train_fails('train.yaml', ExitCode.INCOMPATIBLE_MODEL, f'format version {FORMAT_VERSION + 1}')


@pytest.mark.parametrize(
    ('content', 'config', 'code', 'match'),
    [
        (b'2\nPBC="F F F"\nNa 0 0 0\n', 'train_file: train.extxyz\n', ExitCode.INPUT_FILE_ERROR, 'Frame has 1 atoms'),
        (None, 'train_file: train.extxyz\nepochz: 2\n', ExitCode.INVALID_CONFIG, 'epochz'),
    ],
    ids=['malformed extxyz', 'unknown config key'],
)
def test_les_train_refuses(generate_dataset, tmp_path, monkeypatch, content, config, code, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'train.extxyz').write_bytes(content or generate_dataset(2).get_content(mode='rb'))
    (tmp_path / 'train.yaml').write_text(config)
    _assert_les_train_fails('train.yaml', code, match)


def _assert_les_train_fails(config: str, code: ExitCode, match: str) -> None:
    """``les-train config`` exits with ``code``, one stderr line naming the error, and writes no output file."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = train.main([config, '--device', 'cpu'])
    assert status == code, stderr.getvalue()
    lines = stderr.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f'les-train: ERROR {code.name}: ')
    assert match in lines[0]
    written = [name for name in ('model.pt', 'metrics.json', 'checkpoint.pt') if pathlib.Path(name).exists()]
    assert not written, f'les-train wrote {written}'
