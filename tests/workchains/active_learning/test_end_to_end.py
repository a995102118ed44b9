"""End to end: the demo campaign on the `fast` protocol with the real programs (les-train, les-md, les-eval, CP2K)."""

import math
import re
import shutil
import warnings

import pytest
from aiida import orm
from aiida.common.warnings import AiidaDeprecationWarning
from aiida.engine import run_get_node

from aiida_les.campaign import campaign_history, export_campaign

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
    assert dataset.n_structures == 2 + generation['n_labelled']  # 4 initial frames, 2 held out
    cp2k_runs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:les.cp2k']
    assert sum(n.is_finished_ok for n in cp2k_runs) >= 4 + generation['n_labelled']
    assert len(results['models']) == 2

    history = campaign_history(node)
    assert history[0]['n_models'] == 2
    assert history[0]['n_frames'] > 0
    written = export_campaign(node, tmp_path / 'export')
    for key in ('summary', 'dataset', 'learning_curve', 'error_vs_labels', 'uncertainty'):
        assert written[key].stat().st_size > 0

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
