"""Every ``examples/*.py`` runs on the `fast` protocol (the demo campaign itself: tests/workchains/active_learning)."""

import importlib.util

import pytest


def _load(filepath_tests, name):
    spec = importlib.util.spec_from_file_location(name, filepath_tests.parent / 'examples' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def train_code(aiida_code_installed, find_executable):
    return aiida_code_installed(
        label='les-train-example', filepath_executable=find_executable('les-train'), default_calc_job_plugin='les.train'
    )


def test_01_train_model(filepath_tests, train_code):
    example = _load(filepath_tests, '01_train_model')
    node = example.example_train_model(train_code, protocol='fast')
    assert node.is_finished_ok
    assert node.outputs.model.sha256
    assert node.outputs.metrics['final']['train']['forces_rmse'] > 0
