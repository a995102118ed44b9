"""Fixtures for the CalcJob tests: small labelled datasets and model nodes generated on the fly."""

import pytest


@pytest.fixture
def generate_dataset():
    """Return a factory for a LesDatasetData of rattled NaCl cells labelled with Lennard-Jones (eV, eV/Å)."""

    def factory(n_frames: int = 3, seed: int = 0):
        from ase.build import bulk
        from ase.calculators.lj import LennardJones
        from ase.calculators.singlepoint import SinglePointCalculator

        from aiida_les.data.dataset import LesDatasetData

        frames = []
        for index in range(n_frames):
            atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
            atoms.rattle(stdev=0.05, seed=seed + index)
            atoms.calc = LennardJones(sigma=2.5, epsilon=0.01, rc=5.0)
            results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
            atoms.calc = SinglePointCalculator(atoms, **results)
            frames.append(atoms)
        return LesDatasetData.from_ase(frames)

    return factory


@pytest.fixture
def generate_model():
    """Return a factory for a LesModelData holding placeholder bytes (CalcJob tests never load it)."""

    def factory(content: bytes = b'placeholder model bytes'):
        import io

        from aiida_les.data.model import LesModelData

        return LesModelData(io.BytesIO(content), filename='model.pt', species=['Cl', 'Na'])

    return factory
