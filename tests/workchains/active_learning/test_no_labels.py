"""Step level: a generation whose selected frames could all not be labelled warns, stops the campaign, and fails it.

The real case: a charged seed whose MD ran at charge 0 had every explored frame refused by the labeller; the campaign
ended with exit 0 and no labels added. Now the campaign reports a warning, the stopping rule counts the generation
(``labels_refused`` after ``patience`` of them) and the campaign exits 405 with its outputs attached.
"""

import io

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessState
from aiida.plugins import DataFactory, WorkflowFactory


def test_all_labels_refused_warns_stops_and_exits_405(
    campaign_codes, generate_structure, generate_dataset, generate_workchain
):
    builder = WorkflowFactory('les.active_learning').get_builder_from_protocol(
        campaign_codes, {'nacl': generate_structure('NaCl')}, protocol='fast'
    )
    process = generate_workchain('les.active_learning', builder._inputs(prune=True))
    process.setup()
    dataset, held_out = generate_dataset(3), generate_dataset(2, seed=10)
    dataset.store(), held_out.store()
    process.ctx.dataset, process.ctx.validation_dataset = dataset, held_out
    model_class = DataFactory('les.model')
    process.ctx.models = [model_class(io.BytesIO(b'model %d' % i), model_config={}).store() for i in range(2)]
    process.ctx.trained_on = dataset
    process.ctx.force_error = 0.4

    # The generation's selection, which the campaign's record reads back from the graph: 3 frames selected.
    select = orm.CalcFunctionNode()
    select.set_process_state(ProcessState.FINISHED)
    select.set_exit_status(0)
    select.base.links.add_incoming(process.node, LinkType.CALL_CALC, 'generation_00_select')
    select.store()
    selected = generate_dataset(3, seed=20)
    selection = {'n_frames': 10, 'accurate_fraction': 0.2, 'counts': {'accurate': 2, 'candidate': 8}}
    for name, output in (('report', orm.Dict(selection)), ('selected', selected)):
        output.base.links.add_incoming(select, LinkType.CREATE, name)
        output.store()
    process.ctx.candidates = selected

    # The les.label child: every frame refused, so it failed with 410 and a report of the reasons.
    label = orm.WorkflowNode()
    label.set_process_state(ProcessState.FINISHED)
    label.set_exit_status(410)
    label.set_exit_message('No structure could be labelled; see the report.')
    label.base.links.add_incoming(process.node, LinkType.CALL_WORK, 'generation_00_label')
    label.store()
    failures = [{'index': i, 'reason': 'refused: Multiplicity 1 impossible for 39 electrons'} for i in range(3)]
    report = orm.Dict({'n_requested': 3, 'n_labelled': 0, 'n_failed': 3, 'failures': failures}).store()
    report.base.links.add_incoming(label, LinkType.RETURN, 'report')
    process.ctx.labels = label

    process.inspect_labels()
    warnings = [log.message for log in orm.Log.collection.get_logs_for(process.node) if log.levelname == 'WARNING']
    assert len(warnings) == 1
    assert 'none of the 3 selected frames could be labelled' in warnings[0]
    assert 'Multiplicity 1 impossible for 39 electrons' in warnings[0]

    process.check_convergence()  # the fast protocol's patience is 1
    assert process.ctx.stop_reason == 'labels_refused'
    assert process.ctx.statistics[-1]['no_labels_added'] is True

    exit_code = process.results()
    assert exit_code.status == 405
    assert 'generation(s) 0' in exit_code.message
    summary = process.outputs['summary'].get_dict()  # linked when the step returns, in a running campaign
    assert (summary['stop_reason'], summary['n_generations_without_labels']) == ('labels_refused', 1)
