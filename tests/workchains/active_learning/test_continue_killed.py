"""End to end: a campaign run by `verdi run` is SIGKILLed mid-generation and continued with caching on.

The campaign (`fast` protocol, two generations) runs in a subprocess on the test profile. Once generation 0's labels
are merged and generation 1's committee is trained, the subprocess is killed, leaving the campaign node `waiting` with
no process behind it. `get_builder_restart` then continues it in this process with caching enabled: generation 0 is
reused through the provenance graph, generation 1's finished trainings come back from the cache, and no finished
CP2K or training calculation runs again.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage import get_manager
from aiida.manage.caching import enable_caching
from aiida.plugins import WorkflowFactory

from workchains.active_learning.history import campaign_history, find_campaigns, generation_children
from workchains.active_learning.state import INTERRUPTED, campaign_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which('cp2k.psmp') is None, reason='CP2K (cp2k.psmp) is not installed'),
]

CAMPAIGN_SCRIPT = """
import importlib.util
from aiida.engine import run_get_node
spec = importlib.util.spec_from_file_location('demo', {demo!r})
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
run_get_node(demo.demo_builder(protocol='fast', overrides={{'parameters': {{'max_generations': 2}}}}))
"""
TIMEOUT = 900  # s, for the killed run to reach its kill point on a busy 2-core machine


def _ready_to_kill(pk: int) -> bool:
    """Generation 0 merged and every generation-1 training finished: the kill leaves work done in both.

    Read as columns, so that no node object cached in this session hides the other process's progress.
    """
    query = orm.QueryBuilder().append(orm.WorkChainNode, filters={'id': pk}, tag='campaign')
    query.append(
        orm.ProcessNode,
        with_incoming='campaign',
        tag='child',
        project=['attributes.process_state', 'attributes.exit_status'],
        edge_tag='link',
        edge_filters={'label': {'or': [{'==': 'generation_00_merge'}, {'like': 'generation_01_train_%'}]}},
        edge_project=['label'],
    )
    done = {
        row['link']['label']: row['child']['attributes.process_state'] == 'finished'
        and row['child']['attributes.exit_status'] == 0
        for row in query.dict()
    }
    trainings = [ok for label, ok in done.items() if label.startswith('generation_01_train')]
    return done.get('generation_00_merge', False) and len(trainings) == 2 and all(trainings)


def _start_and_kill(script, log) -> tuple[int, int]:
    """Start the campaign with `verdi run`, wait for the kill point, SIGKILL the runner.

    :return: the campaign's pk and the process group of the killed run (its CalcJobs' processes are in it).
    """
    before = {node.pk for node in find_campaigns(100)}
    verdi = shutil.which('verdi') or os.path.join(os.path.dirname(sys.executable), 'verdi')
    process = subprocess.Popen(
        [verdi, 'run', str(script)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pk, deadline = None, time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            if pk is None:
                pk = next((node.pk for node in find_campaigns(5) if node.pk not in before), None)
            if pk is not None and _ready_to_kill(pk):
                process.send_signal(signal.SIGKILL)  # the runner only: its CalcJobs' own processes run on
                process.wait()
                return pk, process.pid
        pytest.fail(f'the campaign never reached the kill point (exit {process.poll()}); see {log.name}')
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _hashes(nodes) -> set[str]:
    return {node.base.caching.get_hash() for node in nodes}


def _calcs(campaign: orm.WorkChainNode, plugin: str) -> list[orm.CalcJobNode]:
    return [node for node in campaign.called_descendants if node.process_type == f'aiida.calculations:{plugin}']


def test_continue_killed_campaign(demo, codes, filepath_tests, tmp_path):
    script = tmp_path / 'campaign.py'
    script.write_text(CAMPAIGN_SCRIPT.format(demo=str(filepath_tests.parent / 'examples' / 'demo.py')))
    with open(tmp_path / 'verdi_run.log', 'w') as log:
        pk, group = _start_and_kill(script, log)
    try:
        get_manager().get_profile_storage().get_session().expire_all()  # the other process wrote since
        _check_continuation(orm.load_node(pk))
    finally:
        with contextlib.suppress(ProcessLookupError):  # jobs the killed runner left must not outlive the test
            os.killpg(group, signal.SIGKILL)


def _check_continuation(killed: orm.WorkChainNode) -> None:
    assert not killed.is_terminated  # nobody is left to move it on: that is what a SIGKILLed runner leaves
    state = campaign_state(killed)
    assert state.generation == 1
    merge = generation_children(killed)[0]['merge'][0]
    assert state.dataset.uuid == merge.outputs.result.uuid

    builder = WorkflowFactory('les.active_learning').get_builder_restart(killed)
    with enable_caching():
        _, continued = run_get_node(builder)
    assert continued.is_finished_ok, continued.exit_message
    logs = ' '.join(log.message for log in orm.Log.collection.get_logs_for(continued))
    assert f'continuing campaign {killed.pk} at generation 1' in logs
    assert 'initial labels (2 training, 2 held-out frames)' in logs

    # No finished CP2K label or training of the killed run runs again: reused through the graph, or from the cache.
    for plugin in ('les.cp2k', 'les.train'):
        finished_before = _hashes(node for node in _calcs(killed, plugin) if node.is_finished_ok)
        rerun = [node for node in _calcs(continued, plugin) if node.base.caching.get_cache_source() is None]
        assert _hashes(rerun).isdisjoint(finished_before), plugin
    trainings = _calcs(continued, 'les.train')
    assert len(trainings) == 2
    assert all(node.base.caching.get_cache_source() is not None for node in trainings)  # generation 1, cached
    # Initial and generation-0 structures are not even asked for again.
    labelled_before = {
        node.inputs.structure.base.caching.get_hash()
        for label in ('initial_labels', 'generation_00_label')
        for node in killed.base.links.get_outgoing(link_label_filter=label).one().node.called_descendants
        if node.process_type == 'aiida.calculations:les.cp2k'
    }
    labelled_now = {node.inputs.structure.base.caching.get_hash() for node in _calcs(continued, 'les.cp2k')}
    assert labelled_now.isdisjoint(labelled_before)

    # The summary and the history run on from generation 0; the dataset keeps every earlier label.
    rows = continued.outputs.summary['generations']
    assert [row['generation'] for row in rows] == [0, 1]
    assert rows[0]['stopping'] == INTERRUPTED
    assert rows[0]['n_labelled'] == merge.outputs.result.n_structures - 2
    assert [record.campaign_pk for record in campaign_history(continued)] == [killed.pk, continued.pk]
    assert continued.outputs.dataset.n_structures == merge.outputs.result.n_structures + rows[1]['n_labelled']
