"""Fixtures of the campaign end-to-end tests: the demo module and the codes it loads, with the real programs."""

import importlib.util

import pytest

CODES = {
    'les-train': ('les-train', 'les.train'),
    'les-md': ('les-md', 'les.md'),
    'les-eval': ('les-eval', 'les.evaluate'),
    'cp2k': ('les-cp2k', 'les.cp2k'),
}


@pytest.fixture
def demo(filepath_tests):
    """The `examples/demo.py` module, imported from its file."""
    spec = importlib.util.spec_from_file_location('demo', filepath_tests.parent / 'examples' / 'demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def codes(aiida_code_installed, aiida_localhost, find_executable):
    """Register the codes under the labels that `aiida-les setup` uses, with the real executables."""
    aiida_localhost.set_default_mpiprocs_per_machine(1)
    return {
        label: aiida_code_installed(
            label=label,
            filepath_executable=find_executable(executable),
            default_calc_job_plugin=plugin,
            computer=aiida_localhost,
            prepend_text='export OMP_NUM_THREADS=1',
        )
        for label, (executable, plugin) in CODES.items()
    }
