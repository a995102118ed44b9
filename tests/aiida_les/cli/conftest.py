"""Fixtures of the ``aiida-les`` command tests: real model and dataset nodes."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import yaml

from les_model.testing.models import TINY_MODEL
from les_model.testing.structures import lennard_jones_nacl_frames


@pytest.fixture(scope='session')
def trained_model_file(tmp_path_factory):
    """A model file written by ``les-train`` (2 epochs, tiny network) on 4 Lennard-Jones NaCl frames."""
    import ase.io

    from les_model.cli import train

    workdir = tmp_path_factory.mktemp('trained_model')
    ase.io.write(workdir / 'train.extxyz', lennard_jones_nacl_frames(4))
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

    return LesDatasetData.from_ase(lennard_jones_nacl_frames(3, seed=10)).store()
