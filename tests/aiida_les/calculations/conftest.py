"""Fixtures for the CalcJob tests: model nodes generated on the fly (datasets: tests/conftest.py)."""

import pytest


@pytest.fixture
def generate_model():
    """Return a factory for a LesModelData holding placeholder bytes (CalcJob tests never load it)."""

    def factory(content: bytes = b'placeholder model bytes'):
        import io

        from aiida_les.data.model import LesModelData

        return LesModelData(io.BytesIO(content), filename='model.pt', species=['Cl', 'Na'])

    return factory
