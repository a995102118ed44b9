"""End to end: the real ``les-train``, ``les-md`` and ``les-eval`` programs run as CalcJobs on localhost.

A committee of two tiny models is trained for 2 epochs on generated Lennard-Jones NaCl data (the training served from
the cache the second time), drives 10 MD steps and is evaluated on the data; and a walltime stop is resumed from its
checkpoint. Everything runs on CPU in the test process: workchains submit their children to the local event loop,
no daemon or broker is needed.
"""

import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching
from aiida.plugins import CalculationFactory

from aiida_les.calculations.train import LesTrainCalculation

# The programs live next to this Python when the virtual environment is not on PATH.
BIN = str(pathlib.Path(sys.executable).parent)
SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), BIN])
pytestmark = pytest.mark.skipif(
    not all(shutil.which(name, path=SEARCH_PATH) for name in ('les-train', 'les-md', 'les-eval')),
    reason='the les-* programs are not installed',
)


@pytest.fixture(autouse=True)
def fast_localhost(aiida_localhost):
    """Poll the local jobs without waiting."""
    aiida_localhost.set_minimum_job_poll_interval(0.0)
    aiida_localhost.configure(safe_interval=0.0)


@pytest.fixture
def real_code(aiida_code_installed):
    """Return a factory for a code running the real program.

    Labels differ from those of ``fixture_code`` on purpose: that factory reuses a code by label, and the input-file
    tests register the same entry points with ``/bin/true``.
    """

    def factory(entry_point: str, executable: str):
        return aiida_code_installed(
            label=f'{executable}-real',
            default_calc_job_plugin=entry_point,
            filepath_executable=shutil.which(executable, path=SEARCH_PATH),
        )

    return factory


TINY = {'cutoff': 4.0, 'n_features': 8, 'n_radial': 4, 'n_interactions': 1, 'readout_hidden': 8, 'charge_hidden': 8}
TRAIN = {'epochs': 2, 'batch_size': 2, 'dtype': 'float64', 'model': TINY}
OPTIONS = {'max_wallclock_seconds': 600, 'device': 'cpu', 'withmpi': False}


def test_train_md_evaluate(real_code, generate_dataset, generate_structure):
    """Committee training (workchain, ``fast`` protocol) -> committee MD (workchain) -> evaluation (CalcJob).

    The training runs twice with caching on: the second ``les.train`` job is a clone of the first, no program runs.
    """
    from workchains.md.base import LesMdBaseWorkChain
    from workchains.train.base import LesTrainBaseWorkChain

    dataset = generate_dataset(n_frames=4).store()
    overrides = {'train': {'config': {'committee_size': 2, 'dtype': 'float64'}}}
    builder = LesTrainBaseWorkChain.get_builder_from_protocol(
        real_code('les.train', 'les-train'), dataset, protocol='fast', overrides=overrides, options={'device': 'cpu'}
    )
    with enable_caching(identifier='aiida.calculations:les.train'):
        train, train_node = run_get_node(builder)
        again, again_node = run_get_node(builder)
    assert train_node.is_finished_ok, train_node.exit_message
    models = train['models']
    assert sorted(models) == ['member_0', 'member_1']
    assert models['member_0'].sha256 != models['member_1'].sha256  # seeds differ
    assert train['metrics']['status'] == 'completed'
    assert train['learning_curve'].filename == 'learning_curve.png'
    assert models['member_0'].base.attributes.get('species') == ['Na', 'Cl']
    assert again_node.is_finished_ok, again_node.exit_message
    first_job = train_node.base.links.get_outgoing(node_class=orm.CalcJobNode).one().node
    cached_job = again_node.base.links.get_outgoing(node_class=orm.CalcJobNode).one().node
    assert not first_job.base.caching.is_created_from_cache
    assert cached_job.base.caching.is_created_from_cache
    assert cached_job.base.caching.get_cache_source() == first_job.uuid
    assert again['models']['member_0'].sha256 == models['member_0'].sha256

    builder = LesMdBaseWorkChain.get_builder_from_protocol(
        real_code('les.md', 'les-md'),
        generate_structure('NaCl'),
        models=dict(models),
        protocol='fast',
        overrides={'md': {'config': {'steps': 10, 'write_every': 5}}},
        options={'device': 'cpu'},
    )
    md, md_node = run_get_node(builder)
    assert md_node.is_finished_ok, md_node.exit_message
    trajectory = md['trajectory']
    assert list(trajectory.get_stepids()) == [0, 5, 10]
    assert np.all(trajectory.get_array('max_force_std')[1:] > 0.0)  # two different models disagree
    assert md['output_parameters']['stopped_by_uncertainty'] is False

    evaluate, eval_node = run_get_node(
        CalculationFactory('les.evaluate'),
        code=real_code('les.evaluate', 'les-eval'),
        dataset=dataset,
        models=dict(models),
        metadata={'options': OPTIONS},
    )
    assert eval_node.is_finished_ok, eval_node.exit_message
    assert evaluate['predictions'].n_structures == 4
    errors = evaluate['metrics']['errors']
    assert errors['forces_rmse'] > 0.0
    assert errors['energy_per_atom_mae'] >= 0.0
    # A committee on force labels: its force deviation calibrated, with the plot as an output.
    assert evaluate['metrics']['calibration']['scale'] > 0.0
    with evaluate['calibration_plot'].open(mode='rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_walltime_stop_and_resume(real_code, generate_dataset):
    """A run stopped by ``max_walltime`` (exit 400) resumes from its checkpoint through ``parent_folder``."""
    code = real_code('les.train', 'les-train')
    dataset = generate_dataset(n_frames=4)
    _, stopped = run_get_node(
        LesTrainCalculation,
        code=code,
        dataset=dataset,
        config=orm.Dict({**TRAIN, 'max_walltime': 0.001}),
        metadata={'options': OPTIONS},
    )
    assert stopped.exit_status == LesTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    assert stopped.outputs.metrics['status'] == 'walltime'
    resumed_outputs, resumed = run_get_node(
        LesTrainCalculation,
        code=code,
        dataset=dataset,
        parent_folder=stopped.outputs.remote_folder,
        config=orm.Dict({**TRAIN, 'max_walltime': 600.0}),
        metadata={'options': OPTIONS},
    )
    assert resumed.is_finished_ok, resumed.exit_message
    epochs = resumed_outputs['metrics']['members'][0]['epochs']
    assert [entry['epoch'] for entry in epochs] == [1, 2]


@pytest.mark.gpu
def test_train_on_gpu(real_code, generate_dataset):
    """Training with ``gpu_options``: ``device: cuda`` reaches the program, which trains on the GPU."""
    from aiida_les.utils.resources import gpu_options

    outputs, node = run_get_node(
        LesTrainCalculation,
        code=real_code('les.train', 'les-train'),
        dataset=generate_dataset(n_frames=4),
        config=orm.Dict(TRAIN),
        metadata={'options': gpu_options(num_gpus=1, max_wallclock_seconds=600)},
    )
    assert node.is_finished_ok, node.exit_message
    assert 'device: cuda' in node.base.repository.get_object_content('config.yaml')
    assert outputs['metrics']['status'] == 'completed'


@pytest.mark.slow  # about 50 s on 2 busy cores: two torch start-ups and a daemonless job
@pytest.mark.skipif(not shutil.which('torchrun', path=BIN), reason='no torchrun next to the Python interpreter')
def test_train_with_two_processes(real_code, generate_dataset):
    """``num_mpiprocs_per_machine: 2`` -> the job runs ``torchrun ... les-train`` (gloo) and finishes as one run."""
    outputs, node = run_get_node(
        LesTrainCalculation,
        code=real_code('les.train', 'les-train'),
        dataset=generate_dataset(n_frames=4),
        config=orm.Dict(TRAIN),
        metadata={'options': {**OPTIONS, 'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 2}}},
    )
    assert node.is_finished_ok, node.exit_message
    assert '--nproc_per_node 2 --no-python' in node.base.repository.get_object_content('_aiidasubmit.sh')
    stdout = node.outputs.retrieved.base.repository.get_object_content('les.out').splitlines()
    assert sum(line.startswith('epoch ') for line in stdout) == 2  # rank 0 alone prints
    assert outputs['metrics']['status'] == 'completed'
    assert outputs['model'].sha256
