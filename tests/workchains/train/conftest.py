"""Fixtures for the training workchain tests: a small labelled dataset and fake finished ``les.train`` jobs."""

import pytest


@pytest.fixture
def generate_finished_calc(generate_calc_job_node, aiida_localhost, tmp_path_factory):
    """Return a factory for a finished ``les.train`` CalcJobNode with a chosen exit status and output nodes."""

    def factory(exit_status: int, outputs: dict | None = None):
        from aiida import orm
        from aiida.common import LinkType
        from plumpy import ProcessState

        node = generate_calc_job_node('les.train')
        node.set_process_state(ProcessState.FINISHED)
        node.set_exit_status(exit_status)
        remote = orm.RemoteData(computer=aiida_localhost, remote_path=str(tmp_path_factory.mktemp('les-train-job')))
        remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='remote_folder')
        remote.store()
        for label, output in (outputs or {}).items():
            output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
            output.store()
        return node

    return factory
