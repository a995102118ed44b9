"""Phonon output files: phonopy's files (parameters, force sets, BORN, band.yaml, total_dos.dat) and the PNG plots
of :mod:`les_model.applications.phonons.plots`.
"""

from __future__ import annotations

from pathlib import Path

from phonopy import Phonopy
from phonopy.file_IO import write_BORN, write_FORCE_SETS

from les_model.applications.phonons.compute import PhononResult
from les_model.applications.phonons.plots import plot_band_structure, plot_dos

__all__ = ['write_phonon_outputs', 'write_phonopy_files']


def write_phonopy_files(phonon: Phonopy, directory: str | Path, bands: bool = True, dos: bool = True) -> dict:
    """Write phonopy's files: ``phonopy_params.yaml`` (structure, displacements, forces, force constants, NAC),
    ``FORCE_SETS``, ``BORN`` (when NAC parameters are set), ``band.yaml`` and ``total_dos.dat`` (when computed).

    :return: mapping of file kind (``params``, ``force_sets``, ``born``, ``band``, ``dos``) to path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {'params': directory / 'phonopy_params.yaml', 'force_sets': directory / 'FORCE_SETS'}
    phonon.save(files['params'], settings={'force_constants': True})
    write_FORCE_SETS(phonon.dataset, filename=files['force_sets'])
    if phonon.nac_params is not None:
        files['born'] = directory / 'BORN'
        nac = phonon.nac_params
        write_BORN(phonon.primitive, nac['born'], nac['dielectric'], filename=files['born'])
    if bands and phonon.band_structure is not None:
        files['band'] = directory / 'band.yaml'
        phonon.write_yaml_band_structure(filename=files['band'])
    if dos and phonon.total_dos is not None:
        files['dos'] = directory / 'total_dos.dat'
        phonon.write_total_dos(filename=files['dos'])
    return files


def write_phonon_outputs(result: PhononResult, directory: str | Path, title: str = '') -> dict:
    """Write phonopy's files and the PNG plots of a :class:`PhononResult` (bands and DOS when computed).

    :param result: from :func:`~les_model.applications.phonons.compute.compute_phonons`.
    :param directory: output folder (created).
    :param title: plot title (e.g. the chemical formula).
    :return: mapping of file kind (``params``, ``force_sets``, ``born``, ``band``, ``dos``, ``band_png``,
        ``dos_png``) to path; also stored in ``result.files``.
    """
    files = write_phonopy_files(result.phonon, directory, bands=result.bands is not None, dos=result.dos is not None)
    if result.bands is not None:
        files['band_png'] = plot_band_structure(
            result.bands, Path(directory) / 'band_structure.png', dos=result.dos, title=title
        )
    if result.dos is not None:
        files['dos_png'] = plot_dos(result.dos, Path(directory) / 'dos.png', title=title)
    result.files = files
    return files
