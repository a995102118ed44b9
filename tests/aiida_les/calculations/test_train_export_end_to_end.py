"""End to end: ``les.train`` with ``export`` runs the real ``les-train`` and returns a metatomic ``exported_model``.

The exported committee (two tiny members, 2 epochs, float64) is loaded with ``metatomic.torch.load_atomistic_model``
and run through ``metatomic-ase`` on a training frame: its energy is the native committee mean and its forces the
native committee's forces.
"""

import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

pytest.importorskip('metatomic.torch')
metatomic_ase = pytest.importorskip('metatomic_ase')

from aiida_les.calculations.train import LesTrainCalculation  # noqa: E402

BIN = str(pathlib.Path(sys.executable).parent)
SEARCH_PATH = os.pathsep.join([os.environ.get('PATH', ''), BIN])
pytestmark = pytest.mark.skipif(
    shutil.which('les-train', path=SEARCH_PATH) is None, reason='the les-train program is not installed'
)

TINY = {'cutoff': 4.0, 'n_features': 8, 'n_radial': 4, 'n_interactions': 1, 'readout_hidden': 8, 'charge_hidden': 8}
TRAIN = {'epochs': 2, 'batch_size': 2, 'dtype': 'float64', 'committee_size': 2, 'model': TINY}
OPTIONS = {'max_wallclock_seconds': 600, 'device': 'cpu', 'withmpi': False}


@pytest.fixture
def train_code(aiida_localhost, aiida_code_installed):
    aiida_localhost.set_minimum_job_poll_interval(0.0)
    aiida_localhost.configure(safe_interval=0.0)
    return aiida_code_installed(
        label='les-train-export',
        default_calc_job_plugin='les.train',
        filepath_executable=shutil.which('les-train', path=SEARCH_PATH),
    )


def test_exported_model_output(train_code, generate_dataset, tmp_path):
    from metatomic.torch import load_atomistic_model

    from les_model.calculator import LesCalculator
    from les_model.io import load_model

    dataset = generate_dataset(n_frames=4)
    outputs, node = run_get_node(
        LesTrainCalculation,
        code=train_code,
        dataset=dataset,
        config=orm.Dict(TRAIN),
        export=True,
        metadata={'options': OPTIONS},
    )
    assert node.is_finished_ok, node.exit_message
    assert sorted(outputs['models']) == ['member_0', 'member_1']
    exported = outputs['exported_model']
    assert exported.filename == 'exported_model.pt'

    paths = []
    for label in ('member_0', 'member_1', None):
        path = tmp_path / f'{label or "exported"}.pt'
        source = exported if label is None else outputs['models'][label]
        path.write_bytes(source.get_content(mode='rb'))
        paths.append(path)
    model = load_atomistic_model(str(paths[2]))
    assert model.capabilities().outputs['energy'].unit == 'eV'

    atoms = dataset.get_ase()[0]
    native = atoms.copy()
    native.calc = LesCalculator([load_model(path, map_location='cpu') for path in paths[:2]])
    engine = atoms.copy()
    engine.calc = metatomic_ase.MetatomicCalculator(model)
    assert abs(engine.get_potential_energy() - native.get_potential_energy()) < 1e-6
    # a 2-epoch model has small forces (~1e-4 eV/Å): compare far below them
    assert np.abs(engine.get_forces() - native.get_forces()).max() < 1e-9
    assert np.abs(native.get_forces()).max() > 1e-5


def test_no_export_by_default(generate_calc_job, fixture_code, generate_dataset):
    """Without ``export`` the configuration has no ``export_file`` and nothing extra is retrieved."""
    inputs = {'code': fixture_code('les.train'), 'dataset': generate_dataset(), 'config': orm.Dict(TRAIN)}
    _, calc_info = generate_calc_job('les.train', inputs)
    assert 'exported_model.pt' not in calc_info.retrieve_list
    inputs['export'] = orm.Bool(True)
    folder, calc_info = generate_calc_job('les.train', inputs)
    assert 'exported_model.pt' in calc_info.retrieve_list
    assert 'export_file: exported_model.pt' in pathlib.Path(folder.get_abs_path('config.yaml')).read_text()
