"""export_committee: the metatomic model of a committee (energy = committee mean), recorded in the provenance graph."""

from __future__ import annotations

import io
import pathlib
import re
import tempfile

from aiida import orm
from aiida.engine import calcfunction

from aiida_les.data.model import LesModelData

__all__ = ('EXPORT_FILENAME', 'export_committee', 'export_available')

#: File name of the exported model (as ``les.train`` names its ``exported_model``).
EXPORT_FILENAME = 'exported_model.pt'


def export_available() -> bool:
    """Whether ``metatomic-torch`` (the ``export`` extra) can be imported here."""
    try:
        import les_model.metatomic_model  # noqa: F401
    except ImportError:
        return False
    return True


def _natural_key(label: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', label)]


@calcfunction
def export_committee(**models: LesModelData) -> orm.SinglefileData:
    """Return the committee ``models`` (keyword = link label, e.g. ``member_0``) as one metatomic model file.

    What ``les-export`` writes: a TorchScript ``AtomisticModel`` in float64, energy [eV] = committee mean (forces
    and stress by the engine's autograd), ``energy_ensemble`` / ``energy_uncertainty`` for two or more members,
    latent charges as ``les::charges`` [e], lengths in Å. Runs where the workchain runs (a few seconds of
    TorchScript compilation); needs the ``export`` extra.

    :raises ValueError: if no model is given or the members cannot form one model (different cutoffs, spin).
    """
    if not models:
        raise ValueError('export_committee needs at least one model, got none.')
    import torch

    from les_model.io import load_model
    from les_model.metatomic_model import export_metatomic

    with tempfile.TemporaryDirectory() as dirpath:
        members = []
        for label in sorted(models, key=_natural_key):
            path = pathlib.Path(dirpath) / f'{label}.pt'
            path.write_bytes(models[label].get_content(mode='rb'))
            members.append(load_model(path, map_location='cpu', dtype=torch.float64))
        output = pathlib.Path(dirpath) / EXPORT_FILENAME
        export_metatomic(members, output, dtype=torch.float64)
        return orm.SinglefileData(io.BytesIO(output.read_bytes()), filename=EXPORT_FILENAME)
