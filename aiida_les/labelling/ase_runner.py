"""``les-ase-label``: label one structure, or a batch, with any ASE calculator given by import path and kwargs.

Usage: ``les-ase-label [les_ase_label.json]``. The settings file (written by the ``les.ase_label`` CalcJob) holds
``import_path`` (e.g. ``ase.calculators.emt.EMT`` or ``tblite.ase.TBLite``), ``kwargs`` (dict), optional
``charge_kwarg`` / ``multiplicity_kwarg`` (the calculator's keyword names for the total charge and the spin
multiplicity, e.g. ``charge`` and ``multiplicity`` for tblite), ``total_charge``, ``multiplicity`` and either
``structure_file`` (ase JSON) or, for a batch, ``structures`` (``{key: ase JSON file}``). It writes
``labelled.extxyz`` (energy eV, forces eV/Å, stress eV/Å^3 for periodic cells, charges when the calculator provides
them) and ``results.json`` (``status``: ``ok``, ``import_failed`` or ``calculator_failed``; ``message``;
``seconds``); a batch writes ``labelled/<key>.extxyz`` and one such record per key under ``structures`` in
``results.json`` (see :func:`run_label`). Exit status 0 on success, 2 when a label failed, 3 when the settings
cannot be read. This module must not import aiida.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pathlib
import sys
import time
import traceback

import ase.io
import numpy as np

from .frames import labelled_frame

__all__ = ('ase_level_of_theory', 'load_calculator', 'main')

SETTINGS_FILE = 'les_ase_label.json'
OUTPUT_FILE = 'labelled.extxyz'
RESULTS_FILE = 'results.json'
#: Folder of the labelled frames of a batch, one ``<key>.extxyz`` per structure.
BATCH_DIRECTORY = 'labelled'


def ase_level_of_theory(calculator: dict) -> str:
    """Return ``ase/<label or import path>#<hash of import path and kwargs>`` for a calculator description."""
    payload = {'import_path': calculator['import_path'], 'kwargs': calculator.get('kwargs') or {}}
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
    return f'ase/{calculator.get("label") or calculator["import_path"]}#{digest}'


def load_calculator(import_path: str, kwargs: dict):
    """Import ``module.Class`` from ``import_path`` and instantiate it with ``kwargs``."""
    module_name, _, class_name = import_path.rpartition('.')
    if not module_name:
        raise ImportError(f'`{import_path}` is not a dotted import path like `ase.calculators.emt.EMT`.')
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


def _calculator_kwargs(settings: dict) -> dict:
    """The calculator's keyword arguments, with the total charge and multiplicity under their keyword names."""
    kwargs = dict(settings.get('kwargs') or {})
    if settings.get('charge_kwarg'):
        kwargs[settings['charge_kwarg']] = int(settings.get('total_charge', 0))
    if settings.get('multiplicity_kwarg'):
        kwargs[settings['multiplicity_kwarg']] = int(settings.get('multiplicity', 1))
    return kwargs


def _label_one(settings: dict, structure_path: pathlib.Path, output_path: pathlib.Path) -> dict:
    """Label the structure in ``structure_path`` (ase JSON), write ``output_path`` (extxyz); return its record."""
    started = time.perf_counter()
    record = {'status': 'ok', 'message': ''}
    try:
        calculator = load_calculator(settings['import_path'], _calculator_kwargs(settings))
    except Exception as exception:  # any import or constructor failure is reported, not raised
        record.update(status='import_failed', message=f'{type(exception).__name__}: {exception}')
    else:
        try:
            atoms = ase.io.read(structure_path, format='json')
            atoms.calc = calculator
            energy = atoms.get_potential_energy()
            forces = atoms.get_forces()
            stress = None
            if np.all(atoms.pbc):
                stress = atoms.get_stress(voigt=False)
            charges = calculator.results.get('charges')
            frame = labelled_frame(
                atoms,
                energy,
                forces,
                level_of_theory=ase_level_of_theory(settings),
                stress=stress,
                charges=charges,
                total_charge=int(settings.get('total_charge', 0)),
                multiplicity=int(settings.get('multiplicity', 1)),
            )
            if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
                raise FloatingPointError('the calculator returned non-finite energy or forces')
            ase.io.write(output_path, frame, format='extxyz')
        except Exception as exception:
            record.update(status='calculator_failed', message=f'{type(exception).__name__}: {exception}')
            traceback.print_exc()
    record['seconds'] = round(time.perf_counter() - started, 3)
    return record


def run_label(settings: dict, directory: pathlib.Path) -> dict:
    """Label the structure (or the batch) following ``settings`` in ``directory``; write and return the record.

    One structure (``structure_file``): the record is ``{status, message, seconds}``, the frame ``labelled.extxyz``.
    A batch (``structures``: ``{key: file}``): each structure is labelled on its own, a failure of one never stops
    the others; the record is ``{status, message, seconds, structures: {key: {status, message, seconds}}}`` with
    ``status`` ``ok`` when all succeeded, else the count of failures in ``message``; frames go to
    ``labelled/<key>.extxyz``.
    """
    directory = pathlib.Path(directory)
    if 'structures' not in settings:
        path = directory / settings.get('structure_file', 'structure.json')
        record = _label_one(settings, path, directory / OUTPUT_FILE)
        (directory / RESULTS_FILE).write_text(json.dumps(record, indent=2))
        return record
    started = time.perf_counter()
    (directory / BATCH_DIRECTORY).mkdir(exist_ok=True)
    records = {
        key: _label_one(settings, directory / name, directory / BATCH_DIRECTORY / f'{key}.extxyz')
        for key, name in sorted(settings['structures'].items())
    }
    failed = sorted(key for key, record in records.items() if record['status'] != 'ok')
    record = {
        'status': 'ok' if not failed else 'some_failed',
        'message': f'{len(failed)} of {len(records)} structures failed: {failed}' if failed else '',
        'seconds': round(time.perf_counter() - started, 3),
        'structures': records,
    }
    (directory / RESULTS_FILE).write_text(json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-ase-label``."""
    argv = sys.argv[1:] if argv is None else argv
    path = pathlib.Path(argv[0] if argv else SETTINGS_FILE)
    try:
        settings = json.loads(path.read_text())
        settings['import_path']
    except (OSError, json.JSONDecodeError, KeyError) as exception:
        print(f'les-ase-label: cannot read settings file {path}: {exception!r}', file=sys.stderr)  # noqa: T201
        return 3
    record = run_label(settings, path.parent)
    return 0 if record['status'] == 'ok' else 2


if __name__ == '__main__':
    sys.exit(main())
