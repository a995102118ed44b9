"""MaceHost: adapter that runs a MACE network (``mace-torch``) as the short-range host of an LES model.

``mace-torch`` is an optional extra (``pip install aiida-les[mace]``; the ``dev`` extra installs it so that the
physics tests of ``tests/les_model/test_model_physics.py`` run on this host too). The adapter calls MACE's building
blocks (embedding, radial basis, spherical harmonics, interaction and product blocks, readouts) on the graph that
:class:`~les_model.nn.model.LesModel` builds, and returns the invariant (scalar) channels of the last layer as node
features. MACE's internal API changes between releases; this adapter targets ``mace-torch`` 0.3.x.

The options (``model.mace``) are checked and mapped by :mod:`les_model.nn.mace_options`, before anything runs. The
import notice and the TorchScript warnings that mace-torch and e3nn print while a model is built are silenced:
they concern TorchScript compilation, which this adapter does not use.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from les_model import _keys as K
from les_model.nn.mace_options import mace_arguments
from les_model.nn.short_range import ShortRangeHost

__all__ = ['MaceHost']


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence mace-torch's import notice (a print) and the TorchScript / tensor-copy warnings of building a model."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings('ignore', message='The TorchScript type system', category=UserWarning)
        warnings.filterwarnings('ignore', message='To copy construct from a tensor', category=UserWarning)
        warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=DeprecationWarning)
        # mace-torch sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD itself on import; torch then warns at e3nn's constant load
        warnings.filterwarnings(
            'ignore', message='Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', category=UserWarning
        )
        yield


def _import_mace():
    # e3nn 0.4.4 (the version mace-torch pins) torch.load()s its Wigner constants, which hold `slice` objects that
    # torch >= 2.6's weights-only unpickler refuses; `slice` is a harmless builtin.
    torch.serialization.add_safe_globals([slice])
    try:
        with _quiet():
            from e3nn import o3
            from mace import modules
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            "the 'mace' backbone needs mace-torch: install the optional extra with `pip install aiida-les[mace]`"
        ) from exc
    return modules, o3


class MaceHost(ShortRangeHost):
    """Short-range host built from ``mace.modules.MACE``.

    :param species: atomic numbers, in the order of the one-hot node attributes.
    :param cutoff: cutoff in Å.
    :param n_features: number of scalar channels unless ``num_channels`` or ``hidden_irreps`` is given
        (``hidden_irreps`` is then ``<n>x0e + <n>x1o``, i.e. ``max_L`` 1).
    :param kwargs: the ``model.mace`` options: ``mace_run_train`` spellings (``num_channels``, ``max_L``,
        ``num_radial_basis``, ``num_cutoff_basis``, ``interaction``) or ``MACE`` arguments (``max_ell``,
        ``correlation``, ``num_interactions``, ``hidden_irreps``, ``MLP_irreps``, ``avg_num_neighbors``, ...).
    :raises ValueError: listing every invalid option.
    """

    def __init__(self, species: Sequence[int], cutoff: float, n_features: int = 64, **kwargs: Any):
        super().__init__()
        args, errors = mace_arguments(kwargs, int(n_features), default_n_features=int(n_features))
        if errors:
            raise ValueError('; '.join(errors))
        modules, o3 = _import_mace()
        self.cutoff = float(cutoff)
        self.n_species = len(species)
        gates = {'silu': torch.nn.functional.silu, 'tanh': torch.tanh, 'abs': torch.abs, 'None': None, None: None}
        options: dict[str, Any] = {
            **args,
            'r_max': float(cutoff),
            'num_elements': len(species),
            'atomic_numbers': list(species),
            'atomic_energies': torch.zeros(len(species)),
            'avg_num_neighbors': float(args.get('avg_num_neighbors', 16.0)),
            'hidden_irreps': o3.Irreps(args['hidden_irreps']),
            'MLP_irreps': o3.Irreps(args['MLP_irreps']),
            'interaction_cls': modules.interaction_classes[args['interaction_cls']],
            'interaction_cls_first': modules.interaction_classes[args['interaction_cls_first']],
            'gate': gates[args['gate']],
        }
        self.n_features = int(options['hidden_irreps'].count(o3.Irrep('0e')))
        with _quiet():
            self.mace = modules.MACE(**options)

    def forward(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """See :class:`~les_model.nn.short_range.ShortRangeHost`."""
        mace = self.mace
        vectors = data[K.EDGE_VECTORS]
        lengths = data[K.EDGE_LENGTHS][:, None]
        edge_index = data[K.EDGE_INDEX]
        node_attrs = torch.nn.functional.one_hot(data[K.SPECIES_INDEX], self.n_species).to(vectors.dtype)
        node_feats = mace.node_embedding(node_attrs)
        if K.NODE_STATE in data:
            n = min(self.n_features, data[K.NODE_STATE].shape[1])
            node_feats = torch.cat([node_feats[:, :n] + data[K.NODE_STATE][:, :n], node_feats[:, n:]], dim=1)
        edge_attrs = mace.spherical_harmonics(vectors)
        edge_feats = mace.radial_embedding(lengths, node_attrs, edge_index, mace.atomic_numbers)
        if isinstance(edge_feats, tuple):
            edge_feats = edge_feats[0]
        node_energy = torch.zeros_like(lengths[:1, 0]).expand(node_attrs.shape[0]).clone()
        for interaction, product, readout in zip(mace.interactions, mace.products, mace.readouts, strict=True):
            node_feats, sc = interaction(
                node_attrs=node_attrs,
                node_feats=node_feats,
                edge_attrs=edge_attrs,
                edge_feats=edge_feats,
                edge_index=edge_index,
            )
            node_feats = product(node_feats=node_feats, sc=sc, node_attrs=node_attrs)
            node_energy = node_energy + readout(node_feats).squeeze(-1)
        return node_energy, node_feats[:, : self.n_features]
