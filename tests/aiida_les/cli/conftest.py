"""Fixtures of the ``aiida-les`` command tests: real model and dataset nodes, and ``verdi`` invoked in this process."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import yaml

TINY_MODEL = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'n_interactions': 1}


def lennard_jones_frames(n_frames: int, seed: int = 0) -> list:
    """Rattled NaCl cells labelled with Lennard-Jones (eV, eV/Å), as ``generate_dataset`` makes them."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for index in range(n_frames):
        atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
        atoms.rattle(stdev=0.05, seed=seed + index)
        atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


@pytest.fixture(scope='session')
def trained_model_file(tmp_path_factory):
    """A model file written by ``les-train`` (2 epochs, tiny network) on 4 Lennard-Jones NaCl frames."""
    import ase.io

    from les_model.cli import train

    workdir = tmp_path_factory.mktemp('trained_model')
    ase.io.write(workdir / 'train.extxyz', lennard_jones_frames(4))
    config = {'train_file': 'train.extxyz', 'epochs': 2, 'batch_size': 2, 'progress': False, 'model': TINY_MODEL}
    (workdir / 'train.yaml').write_text(yaml.safe_dump(config))
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            assert train.main(['train.yaml', '--device', 'cpu', '--dtype', 'float64']) == 0
    finally:
        os.chdir(cwd)
    return workdir / 'model.pt'


@pytest.fixture
def model_node(trained_model_file):
    """A stored ``LesModelData`` of the trained model file."""
    from aiida_les.data.model import LesModelData

    return LesModelData(trained_model_file).store()


@pytest.fixture
def dataset_node():
    """A stored ``LesDatasetData`` of 3 labelled frames."""
    from aiida_les.data.dataset import LesDatasetData

    return LesDatasetData.from_ase(lennard_jones_frames(3, seed=10)).store()


@pytest.fixture
def run_verdi():
    """Return a function that invokes ``verdi`` in this process (``verdi data les ...`` goes through the plugin)."""
    from aiida.cmdline.commands.cmd_verdi import verdi
    from aiida.common import log
    from click.testing import CliRunner

    def invoke(*args):
        active, level = log.CLI_ACTIVE, log.CLI_LOG_LEVEL
        try:
            return CliRunner().invoke(verdi, [str(arg) for arg in args], catch_exceptions=False)
        finally:
            log.CLI_ACTIVE, log.CLI_LOG_LEVEL = active, level
            log.configure_logging(with_orm=True)

    return invoke
