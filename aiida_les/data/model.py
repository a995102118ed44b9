"""LesModelData: a trained LES model file with its checksum, version and configuration as attributes."""

from __future__ import annotations

import hashlib
import io
import pathlib
import tempfile
import typing as t

from aiida import orm

__all__ = ('LesModelData',)


#: First bytes of a ``torch.save`` archive (a zip file): the format of every file ``les_model`` writes.
_TORCH_ARCHIVE_MAGIC = b'PK\x03\x04'


class LesModelData(orm.SinglefileData):
    """A saved LES model (the file written by ``les-train``).

    Attributes (queryable): ``sha256`` of the file, ``les_model_version`` that wrote it, ``model_config`` (dict),
    ``species`` (list of element symbols) when the file declares them; models trained by ``les.train`` also record
    ``training_dataset_uuid``, ``validation_dataset_uuid``, ``level_of_theory`` and, in a campaign,
    ``campaign_uuid``. A torch archive is read once on creation (:func:`les_model.io.read_model_file`, tensors only,
    nothing executed): it must be a ``les_model`` model file of the format version this ``les_model`` reads, and its
    version, configuration and species fill the attributes not given explicitly. Content that is not a torch archive
    is stored unchecked (the programs check it when they load it). Models are built from the file only in
    :meth:`get_calculator`.
    """

    DEFAULT_FILENAME = 'model.pt'

    def __init__(
        self,
        file: str | pathlib.Path | t.BinaryIO,
        filename: str | None = None,
        model_config: dict | None = None,
        les_model_version: str | None = None,
        species: list[str] | None = None,
        **kwargs,
    ):
        """Store the model file and its metadata.

        :param file: path or binary handle of the model file.
        :param model_config: the model configuration the file was trained with (stored as an attribute).
        :param les_model_version: version of ``les_model`` that wrote the file; defaults to the installed one.
        :param species: element symbols the model knows.
        """
        if isinstance(file, str | pathlib.Path):
            content = pathlib.Path(file).read_bytes()
            filename = filename or pathlib.Path(file).name
        else:
            content = file.read()
        if not content:
            raise ValueError('The model file is empty.')
        filename = filename or self.DEFAULT_FILENAME
        header = _read_header(content, filename) if content.startswith(_TORCH_ARCHIVE_MAGIC) else {}
        les_model_version = les_model_version or header.get('les_model_version')
        model_config = model_config if model_config is not None else header.get('model_config')
        species = species or header.get('species')
        super().__init__(io.BytesIO(content), filename=filename, **kwargs)
        if les_model_version is None:
            from les_model import __version__ as les_model_version
        self.base.attributes.set('sha256', hashlib.sha256(content).hexdigest())
        self.base.attributes.set('les_model_version', les_model_version)
        self.base.attributes.set('model_config', model_config or {})
        self.base.attributes.set('species', list(species) if species else [])

    @property
    def sha256(self) -> str:
        """SHA-256 checksum of the model file."""
        return self.base.attributes.get('sha256')

    @property
    def les_model_version(self) -> str:
        """Version of ``les_model`` that wrote the file."""
        return self.base.attributes.get('les_model_version')

    @property
    def model_config(self) -> dict:
        """Model configuration the file was trained with."""
        return self.base.attributes.get('model_config')

    @property
    def training_dataset_uuid(self) -> str | None:
        """UUID of the dataset the model was trained on (set by the ``les.train`` parser), None if unknown."""
        return self.base.attributes.get('training_dataset_uuid', None)

    @property
    def level_of_theory(self) -> str | None:
        """Level of theory of the training labels (set by the ``les.train`` parser), None if unknown."""
        return self.base.attributes.get('level_of_theory', None)

    @property
    def campaign_uuid(self) -> str | None:
        """UUID of the ``les.active_learning`` campaign that trained the model, None outside a campaign."""
        return self.base.attributes.get('campaign_uuid', None)

    def verify(self) -> None:
        """Check that the stored file still matches its checksum.

        :raises ValueError: when it does not.
        """
        actual = hashlib.sha256(self.get_content(mode='rb')).hexdigest()
        if actual != self.sha256:
            raise ValueError(f'Model file of node {self.pk} is corrupt: sha256 {actual} != recorded {self.sha256}.')

    def get_calculator(self, device: str = 'cpu', **kwargs):
        """Return an ASE calculator (``les_model.calculator.LesCalculator``) for this model.

        The model is loaded into memory here, so the calculator outlives the temporary copy of the file.

        :param device: torch device to load the model on (``auto``, ``cpu``, ``cuda``).
        :param kwargs: passed on to ``LesCalculator`` (``dtype``, ``compute_bec``, ``total_charge``, ``spin``).
        """
        from les_model.calculator import LesCalculator

        self.verify()
        with tempfile.TemporaryDirectory() as dirpath:
            filepath = pathlib.Path(dirpath) / self.filename
            filepath.write_bytes(self.get_content(mode='rb'))
            return LesCalculator([filepath], device=device, **kwargs)


def _read_header(content: bytes, filename: str) -> dict:
    """Return ``les_model_version``, ``model_config`` and ``species`` (element symbols) of a model file's bytes.

    :raises ValueError: (:class:`les_model.io.IncompatibleModelError`) if the archive is not a ``les_model`` model file
        or was written in another format version.
    """
    from ase.data import chemical_symbols

    from aiida_les.parsers.base import finite_or_none
    from les_model.io import IncompatibleModelError, read_model_file

    with tempfile.TemporaryDirectory() as dirpath:
        path = pathlib.Path(dirpath) / filename
        path.write_bytes(content)
        try:
            payload = read_model_file(path)
        except IncompatibleModelError as exception:
            # Name the file as the user gave it, not the temporary copy.
            raise IncompatibleModelError(str(exception).replace(str(path), filename)) from exception
    species = [chemical_symbols[int(z)] if not isinstance(z, str) else z for z in payload.get('species', [])]
    return {
        'les_model_version': payload.get('les_model_version'),
        'model_config': finite_or_none(payload.get('model_config')),  # attributes are JSON: no NaN or inf
        'species': species,
    }
