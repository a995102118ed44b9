"""End to end: the demo campaign on the `fast` protocol with the real programs (les-train, les-md, les-eval, CP2K)."""

import math
import re
import shutil
import warnings

import pytest
from aiida import orm
from aiida.cmdline.commands.cmd_calcjob import calcjob_inputcat, calcjob_outputcat
from aiida.cmdline.utils.common import get_workchain_report
from aiida.common.links import LinkType
from aiida.common.warnings import AiidaDeprecationWarning
from aiida.engine import run_get_node
from click.testing import CliRunner

from aiida_les.provenance.queries import (
    CP2K_PROCESS_TYPE,
    dft_jobs_of_model,
    dft_settings_of_dataset,
    frame_origin,
    training_dataset_of_model,
)
from workchains.active_learning.export import export_campaign
from workchains.active_learning.history import campaign_history

pytestmark = pytest.mark.skipif(shutil.which('cp2k.psmp') is None, reason='CP2K (cp2k.psmp) is not installed')


def test_fast_campaign(demo, codes, tmp_path, run_aiida_les):
    """One generation: initial CP2K labels -> committee -> MD -> held-out evaluation -> selection -> labels."""
    builder = demo.demo_builder(protocol='fast', overrides={})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    # No deprecation warning per MD run (TrajectoryData pbc), and report numbers rounded to what they mean.
    assert not [w for w in caught if issubclass(w.category, AiidaDeprecationWarning)]
    reports = [log.message for log in orm.Log.collection.get_logs_for(node)]
    assert any('held-out force RMSE' in line for line in reports)
    assert not [line for line in reports if re.search(r'\d\.\d{6,}', line)], reports

    summary = results['summary'].get_dict()
    assert summary['stop_reason'] in {'converged', 'label_budget', 'max_generations'}
    assert summary['n_generations'] == 1
    generation = summary['generations'][0]
    assert generation['n_md_runs'] == 1
    assert generation['heldout_forces_rmse_eV_per_A'] > 0

    # Provenance: every label that entered the final dataset came from a CP2K calculation of this campaign.
    dataset = results['dataset']
    assert dataset.level_of_theory is not None
    # 4 initial frames, 2 held out; of the generation's labels, heldout_fraction (at least one of two) held out too.
    added = generation['n_labelled'] - generation['n_heldout_added']
    assert dataset.n_structures == generation['dataset_size'] == 2 + added
    if generation['n_labelled'] >= 2:
        assert generation['n_heldout_added'] >= 1
    assert results['validation_dataset'].n_structures == generation['heldout_size'] == 2 + generation['n_heldout_added']
    held_out = results['validation_dataset'].get_ase()
    assert [atoms.info['origin'] for atoms in held_out[2:]] == ['md'] * generation['n_heldout_added']
    # The committee's uncertainty calibrated on the held-out set, reported and used by the selection.
    assert generation['force_std_scale'] > 0
    assert any('uncertainty calibrated on the held-out set' in line for line in reports), reports
    select = [n for n in node.called if n.process_label == 'select_structures'][0]
    assert select.inputs.parameters['force_std_scale'] == pytest.approx(generation['force_std_scale'])
    cp2k_runs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.cp2k']
    assert sum(n.is_finished_ok for n in cp2k_runs) >= 4 + generation['n_labelled']
    assert len(results['models']) == 2

    history = campaign_history(node)
    assert history[0].n_models == 2
    assert history[0].n_frames > 0
    written = export_campaign(node, tmp_path / 'export')
    for key in ('summary', 'dataset', 'learning_curve', 'error_vs_labels', 'uncertainty', 'calibration_00'):
        assert written[key].stat().st_size > 0
    assert written['exported_model'].read_bytes() == results['exported_model'].get_content(mode='rb')

    # The same campaign as its user sees it through `aiida-les`.
    shown = run_aiida_les('campaign', 'show', node.pk)
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == f'Campaign {node.pk}: finished, exit status 0'
    assert f'Stopped: {summary["stop_reason"]}' in shown.output
    exported = run_aiida_les('campaign', 'export', node.pk, '-o', tmp_path / 'export')
    assert exported.exit_code != 0  # written above: refused without --force
    exported = run_aiida_les('campaign', 'export', node.pk, '-o', tmp_path / 'export', '--force')
    assert exported.exit_code == 0, exported.output
    model = results['models']['member_0']
    assert (tmp_path / 'export' / 'model_0.pt').read_bytes() == model.get_content(mode='rb')
    assert run_aiida_les('model', 'show', model.pk).exit_code == 0
    assert run_aiida_les('dataset', 'export', dataset.pk, '-o', tmp_path / 'final.extxyz').exit_code == 0
    atoms = dataset.get_ase()[0]
    atoms.calc = model.get_calculator(device='cpu')
    assert math.isfinite(atoms.get_potential_energy())  # the node's calculator runs the campaign's model
    check_exported_model(results, atoms, tmp_path)

    check_frame_provenance(node, results)
    check_report(node)


@pytest.mark.slow
def test_final_committee_trained_on_md_frames(demo, codes):
    """Two generations: the final committee's training set holds MD frames of generation 0, and each training
    frame still maps to one les.cp2k job and one trajectory (or the initial frames) through links.
    """
    builder = demo.demo_builder(protocol='fast', overrides={'parameters': {'max_generations': 2}})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results['summary']['n_generations'] == 2
    trained_kinds = check_frame_provenance(node, results)
    assert 'md' in trained_kinds


def check_exported_model(results, atoms, tmp_path):
    """The campaign's `exported_model` (on by default) is the final committee as one metatomic model: its energy is
    the committee mean of the native members.
    """
    import torch

    pytest.importorskip('metatomic.torch')
    metatomic_ase = pytest.importorskip('metatomic_ase')
    from metatomic.torch import load_atomistic_model

    from les_model.calculator import LesCalculator
    from les_model.io import load_model

    path = tmp_path / 'exported_model.pt'
    path.write_bytes(results['exported_model'].get_content(mode='rb'))
    members = []
    for label, node in sorted(results['models'].items()):
        member = tmp_path / f'{label}.pt'
        member.write_bytes(node.get_content(mode='rb'))
        members.append(load_model(member, map_location='cpu', dtype=torch.float64))  # as exported
    native, engine = atoms.copy(), atoms.copy()
    native.calc = LesCalculator(members)
    engine.calc = metatomic_ase.MetatomicCalculator(load_atomistic_model(str(path)))
    assert engine.get_potential_energy() == pytest.approx(native.get_potential_energy(), abs=1e-6)


def check_frame_provenance(node, results) -> list[str]:
    """Every training frame of the final committee maps to exactly one les.cp2k job and one MD trajectory (or the
    initial frames) through links; the README's three recipes answer on this campaign.

    :return: the origin (``initial`` or ``md``) of each training frame of the final committee.
    """
    summary = results['summary'].get_dict()
    model = results['models']['member_0']
    trained_on = training_dataset_of_model(model)
    assert model.training_dataset_uuid == trained_on.uuid
    assert model.level_of_theory == results['dataset'].level_of_theory
    assert model.campaign_uuid == node.uuid
    assert summary['final_models']['training_dataset_uuid'] == trained_on.uuid

    # Recipe 1: which DFT jobs fed this model. One distinct job per frame, all upstream of the dataset by links.
    jobs = dft_jobs_of_model(model)
    assert len(jobs) == trained_on.n_structures == len({job.uuid for job in jobs})
    assert {job.process_type for job in jobs} == {CP2K_PROCESS_TYPE}
    upstream = orm.QueryBuilder()
    upstream.append(orm.Node, filters={'id': trained_on.pk}, tag='dataset')
    upstream.append(orm.CalcJobNode, with_descendants='dataset', filters={'process_type': CP2K_PROCESS_TYPE})
    assert {job.pk for job in jobs} <= {job.pk for job in upstream.all(flat=True)}

    # Recipe 2: where did each frame come from. Walk the final dataset: its first frames are the training frames (in
    # a one-generation campaign only initial ones), then the MD frames of the last generation.
    seed = node.inputs.structures['water']
    final_dataset = results['dataset']
    final_jobs = [origin_job.uuid for origin_job in jobs]
    assert [a.info['label_job_uuid'] for a in final_dataset.get_ase()][: len(jobs)] == final_jobs
    kinds = []
    for index in range(final_dataset.n_structures):
        origin = frame_origin(final_dataset, index)
        assert origin['label_job'].process_type == CP2K_PROCESS_TYPE
        if index < len(jobs):
            assert origin['label_job'].uuid == jobs[index].uuid
        labelled_by = orm.QueryBuilder().append(orm.StructureData, filters={'id': origin['structure'].pk}, tag='s')
        labelled_by.append(
            orm.CalcJobNode, with_incoming='s', filters={'process_type': CP2K_PROCESS_TYPE, 'attributes.exit_status': 0}
        )
        assert labelled_by.all(flat=True) == [origin['label_job']]  # exactly one successful les.cp2k job
        inputs = origin['extracted_by'].base.links.get_incoming().all()
        if origin['origin'] == 'md':
            trajectories = [link.node for link in inputs if isinstance(link.node, orm.TrajectoryData)]
            assert trajectories == [origin['trajectory']]  # exactly one trajectory upstream of the structure
            assert origin['origin_uuid'] == origin['trajectory'].uuid
            assert origin['md_job'].process_type == 'aiida.calculations:les.md'
            assert origin['origin_md_step'] in origin['trajectory'].get_stepids()
            assert origin['origin_temperature_K'] == 300.0
            # The generation recorded on the frame is the one in the call link of the MD that wrote the trajectory.
            call = origin['md_job'].caller.base.links.get_incoming(link_type=LinkType.CALL_WORK).one()
            assert call.link_label == f'generation_{origin["origin_generation"]:02d}_md_water_300K'
            assert origin['seed'].uuid == seed.uuid
        else:
            assert origin['origin'] == 'initial'
            assert origin['extracted_by'].process_label == 'unpack_frames'
            assert origin['seed'].uuid == seed.uuid
            assert origin['origin_seed'] == 'water'
        kinds.append(origin['origin'])
    n_initial = kinds.count('initial')
    assert n_initial > 0
    assert kinds == ['initial'] * n_initial + ['md'] * (len(kinds) - n_initial)
    assert kinds[len(jobs) :] == ['md'] * (len(kinds) - len(jobs))
    assert len({frame_origin(final_dataset, i)['label_job'].uuid for i in range(len(kinds))}) == len(kinds)

    # The last generation's labels are in the final dataset but not in the models, and the summary names them.
    final = results['dataset'].get_ase()
    unseen = [atoms.info['label_job_uuid'] for atoms in final[trained_on.n_structures :]]
    assert summary['final_models']['labels_not_trained_on'] == unseen
    last = summary['generations'][-1]
    assert len(unseen) == last['n_labelled'] - last['n_heldout_added'] > 0
    assert all(atoms.info['origin'] == 'md' for atoms in final[trained_on.n_structures :])

    # Recipe 3: the exact DFT settings of a dataset.
    settings = dft_settings_of_dataset(results['dataset'])
    assert settings['level_of_theory'] == results['dataset'].level_of_theory
    assert settings['n_jobs'] == results['dataset'].n_structures
    assert settings['parameters'] == [node.inputs.label.cp2k.cp2k.parameters.get_dict()]
    assert settings['total_charges'] == [0]
    assert '&FORCE_EVAL' in settings['input_file']

    # `verdi calcjob inputcat` and `outputcat` need no file name for a les.cp2k job.
    result = CliRunner().invoke(calcjob_inputcat, [str(jobs[0].pk)])
    assert result.exit_code == 0, result.output
    assert '&FORCE_EVAL' in result.output
    result = CliRunner().invoke(calcjob_outputcat, [str(jobs[0].pk)])
    assert result.exit_code == 0, result.output
    assert 'ENERGY| Total FORCE_EVAL' in result.output
    return kinds[: len(jobs)]


def check_report(node):
    """`verdi process report` shows each step of the generation, with numbers rounded to meaningful digits."""
    report = get_workchain_report(node, 'REPORT')
    for step in (
        'generation 0: training 2 models',
        'generation 0: committee trained',
        'generation 0: 1 MD runs',
        'generation 0: 1 trajectories',
        'frames explored',
        'generation 0: labelling',
        'labels added',
        'accurate fraction',
        'the final committee was trained on',
    ):
        assert step in report, step
    assert not re.findall(r'\d\.\d{6,}', report), re.findall(r'\d\.\d{6,}', report)


@pytest.mark.slow
def test_exploration_schedule_advances(demo, codes):
    """Two stages (NVT 300 K, then NPT 300 K at 1 bar with the MTK barostat): generation 0 finds every frame
    accurate (trust levels set far above any error), so the report shows the schedule advancing and generation 1
    explores the second stage; the campaign cannot count as converged before the last stage.
    """
    schedule = [{'temperatures': [300.0]}, {'temperatures': [300.0], 'pressure': 1.0}]
    parameters = {
        'max_generations': 2,
        'exploration_schedule': schedule,
        'schedule_advance_fraction': 0.5,
        'trust_lower': 50.0,
        'trust_upper': 100.0,
        'accurate_threshold': 0.5,
        'force_error_target': 100.0,
        'patience': 1,
    }
    results, node = run_get_node(demo.demo_builder(protocol='fast', overrides={'parameters': parameters}))
    assert node.is_finished_ok, node.exit_message
    report = get_workchain_report(node, 'REPORT')
    assert 'generation 0: exploration stage 1/2: 300 K' in report
    assert 'exploration schedule advances to stage 2/2' in report
    assert 'generation 1: exploration stage 2/2: 300 K 1 bar' in report
    generations = results['summary']['generations']
    assert [row['schedule_stage'] for row in generations] == [0, 1]
    assert 'converged' not in generations[0]['stopping']  # accurate, but not at the last stage
    md = [link for link in node.base.links.get_outgoing().all() if link.link_label.startswith('generation_01_md')]
    assert [link.link_label for link in md] == ['generation_01_md_water_300K_1bar']
    config = md[0].node.inputs.md.config.get_dict()
    assert (config['ensemble'], config['barostat'], config['pressure']) == ('npt', 'mtk', 1.0)
