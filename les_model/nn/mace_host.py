"""MaceHost: adapter that runs a MACE network (``mace-torch``) as the short-range host of an LES model.

``mace-torch`` is an optional extra (``pip install aiida-les[mace]``; the ``dev`` extra installs it so that the
physics tests of ``tests/les_model/test_model_physics.py`` run on this host too). The adapter calls MACE's building
blocks (embedding, radial basis, spherical harmonics, interaction and product blocks, readouts) on the graph that
:class:`~les_model.nn.model.LesModel` builds, and returns the invariant (scalar) channels of the last layer as node
features. MACE's internal API changes between releases; this adapter targets ``mace-torch`` 0.3.x.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from les_model import _keys as K
from les_model.nn.short_range import ShortRangeHost

__all__ = ['MaceHost']


def _import_mace():
    # e3nn 0.4.4 (the version mace-torch pins) torch.load()s its Wigner constants, which hold `slice` objects that
    # torch >= 2.6's weights-only unpickler refuses; `slice` is a harmless builtin.
    torch.serialization.add_safe_globals([slice])
    try:
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
    :param n_features: number of scalar channels (``hidden_irreps = '<n>x0e + <n>x1o'`` unless given).
    :param kwargs: further keyword arguments of ``mace.modules.MACE`` (``max_ell``, ``correlation``, ...).
    """

    def __init__(self, species: Sequence[int], cutoff: float, n_features: int = 64, **kwargs: Any):
        super().__init__()
        modules, o3 = _import_mace()
        self.cutoff = float(cutoff)
        self.n_features = int(n_features)
        self.n_species = len(species)
        options: dict[str, Any] = {
            'r_max': float(cutoff),
            'num_bessel': 8,
            'num_polynomial_cutoff': 6,
            'max_ell': 2,
            'interaction_cls': modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
            'interaction_cls_first': modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
            'num_interactions': 2,
            'num_elements': len(species),
            'hidden_irreps': o3.Irreps(f'{n_features}x0e + {n_features}x1o'),
            'MLP_irreps': o3.Irreps('16x0e'),
            'atomic_energies': torch.zeros(len(species)),
            'avg_num_neighbors': 16.0,
            'atomic_numbers': list(species),
            'correlation': 3,
            'gate': torch.nn.functional.silu,
        }
        for key in ('hidden_irreps', 'MLP_irreps'):
            if key in kwargs:
                kwargs[key] = o3.Irreps(kwargs[key])
        options.update(kwargs)
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
