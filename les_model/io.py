"""Model files: save and load an :class:`~les_model.nn.model.LesModel` with its configuration.

A model file is a ``torch.save`` dictionary ``{format_version, les_model_version, model_config, species,
reference_energies, state_dict, metadata}`` holding only plain Python types and tensors, so it loads with
``weights_only=True`` on any device.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from les_model import __version__
from les_model.config import ModelConfig
from les_model.nn.model import LesModel

__all__ = ['FORMAT_VERSION', 'IncompatibleModelError', 'load_model', 'model_to_dict', 'read_model_file', 'save_model']

#: Version of the model file layout; bumped whenever old files cannot be read any more.
FORMAT_VERSION = 1


class IncompatibleModelError(ValueError):
    """A model file this version of les_model cannot read."""


def model_to_dict(model: LesModel, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the model-file dictionary of ``model`` (tensors moved to CPU)."""
    return {
        'format_version': FORMAT_VERSION,
        'les_model_version': __version__,
        'model_config': model.config.to_dict(),
        'species': list(model.species),
        'reference_energies': {int(z): float(e) for z, e in model.reference_energies().items()},
        'dtype': str(model.e0.dtype).replace('torch.', ''),
        'state_dict': {k: v.detach().cpu() for k, v in model.state_dict().items()},
        'metadata': dict(metadata or {}),
    }


def save_model(model: LesModel, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` (atomically: a temporary file is renamed into place).

    :param metadata: JSON-like extra information (training seed, metrics, ...).
    """
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    torch.save(model_to_dict(model, metadata), tmp)
    tmp.replace(path)
    return path


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Read and check a model file without building the model.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises IncompatibleModelError: if the file is not a model file or has another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'model file {path} does not exist')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise IncompatibleModelError(f'{path}: not a readable les_model model file ({exc})') from exc
    if not isinstance(payload, dict) or 'format_version' not in payload:
        raise IncompatibleModelError(f'{path}: not a les_model model file (no format_version)')
    version = payload['format_version']
    if version != FORMAT_VERSION:
        raise IncompatibleModelError(
            f'{path}: model file format version {version} is not supported; this les_model '
            f'({__version__}) reads format version {FORMAT_VERSION}'
        )
    return payload


def _model_config(mapping: Mapping[str, Any]) -> ModelConfig:
    """The ModelConfig of a model file.

    Files written before the MACE host refused the mpnn-only settings may carry them with ``backbone: mace``; they
    had no effect on that host, so they are dropped rather than making the file unreadable. Files written before the
    learned net-charge distribution spread the net charge uniformly: they keep doing so.
    """
    from les_model.nn.mace_options import MPNN_ONLY

    mapping = dict(mapping)
    mapping.setdefault('charge_distribution', 'uniform')
    if mapping.get('backbone') == 'mace':
        for key in MPNN_ONLY:
            mapping.pop(key, None)
    return ModelConfig.from_dict(mapping)


def load_model(
    path: str | Path,
    map_location: str | torch.device = 'cpu',
    dtype: torch.dtype | None = None,
) -> LesModel:
    """Load a model file onto ``map_location``, in its saved dtype unless ``dtype`` is given.

    :param path: model file written by :func:`save_model`.
    :param map_location: target device (``'cpu'``, ``'cuda'``, ``torch.device``).
    :param dtype: floating dtype of the returned model; None keeps the saved one.
    :return: the model in eval mode.
    """
    payload = read_model_file(path)
    config = _model_config(payload['model_config'])
    e0 = {int(z): float(e) for z, e in payload['reference_energies'].items()}
    model = LesModel(config, payload['species'], e0)
    saved_dtype = getattr(torch, payload.get('dtype', 'float64'))
    model = model.to(saved_dtype)
    state = dict(payload['state_dict'])
    state.setdefault('charge_sign', torch.tensor(1.0, dtype=saved_dtype))
    model.load_state_dict(state)
    model = model.to(device=map_location, dtype=dtype or saved_dtype)
    model.metadata = dict(payload.get('metadata', {}))
    return model.eval()
