"""Short-range hosts: the :class:`ShortRangeHost` interface and the built-in invariant message-passing network.

A host maps a batch (with the graph filled in by :class:`~les_model.nn.model.LesModel`) to per-atom short-range
energies and per-atom features; the LES charge head reads the features. Any network that implements
:class:`ShortRangeHost` plugs in (see :mod:`les_model.nn.mace_host` for a MACE adapter).

The built-in :class:`MessagePassingHost` ("moment MPNN") is invariant. Each interaction layer forms radial
filters ``W_ij = MLP(rbf(r_ij)) f_c(r_ij)``, messages ``m_ij = W_ij * (A h_j)``, and from them the scalar sum
``s_i = sum_j m_ij``, the vector moment ``v_i = sum_j m_ij u_ij`` and the traceless quadrupole moment
``t_i = sum_j m_ij (u_ij u_ij^T - I/3)`` (``u_ij = r_ij / r_ij``; stored in an orthonormal 5-component basis).
Their rotation invariants ``|v_i|^2`` and ``|t_i|^2`` carry three-body (angular) information at pair cost.
``h_i <- h_i + MLP([s_i, |v_i|^2, |t_i|^2])``. Messages are divided by the mean neighbour count of the training
data, and the angular channels are the last ``min(F, 16)`` message channels.

Linear layers start variance-preserving (weights ``N(0, g^2 / fan_in)``, zero biases, ``g`` = 1 on raw inputs and
:data:`SILU_GAIN` after a SiLU). PyTorch's default uniform init shrinks every layer by about 3x; through the seven
layers between positions and energy that left the initial forces ~1e-3 of the labels on near-lattice structures
(rattled NaCl) and slowed force learning.
"""

import abc

import torch
from torch import nn

from les_model import _keys as K
from les_model.nn import embeddings

__all__ = ['SILU_GAIN', 'MessagePassingHost', 'ShortRangeHost', 'angular_basis', 'scatter_sum']

#: 1 / sqrt(E[silu(x)^2]) for x ~ N(0, 1): the weight gain that keeps unit second moments through a SiLU.
SILU_GAIN = 1.677


def scatter_sum(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Sum ``values`` (E, ...) into ``n`` rows by ``index`` (E,) -> (n, ...).

    ``scatter_add`` with a broadcast (stride-0) index rather than ``index_add``: autograd's ``index_add`` keeps the
    whole ``values`` tensor for its backward (it only needs its shape), which at 3,000 atoms held a third of a force
    call's memory; ``scatter_add`` keeps only the index. Same sums, same order.
    """
    shape = [n] + list(values.shape[1:])
    out = values.new_zeros(shape)
    if values.dim() > 1:
        index = index.view([-1] + [1] * (values.dim() - 1)).expand(values.shape)
    return out.scatter_add(0, index, values)


class ShortRangeHost(nn.Module, abc.ABC):
    """Interface of a short-range host network.

    ``forward(data)`` receives a batch dictionary holding at least ``species_index (N,)``, ``edge_index (2,E)``,
    ``edge_vectors (E,3)`` [Å], ``edge_lengths (E,)`` [Å], ``batch (N,)`` and ``node_state (N,F)`` (the
    total-charge/spin embedding, zeros when disabled; hosts add it to their initial features). It returns
    ``(node_energy (N,) [eV], node_features (N, n_features))``. Energies must be smooth functions of the edge
    vectors that vanish continuously at ``cutoff``.

    :ivar n_features: F, width of the returned node features.
    :ivar cutoff: short-range cutoff in Å used to build the graph.
    """

    n_features: int
    cutoff: float

    @abc.abstractmethod
    def forward(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return per-atom energies (N,) in eV and features (N, F)."""


def _linear(n_in: int, n_out: int, gain: float = 1.0, bias: bool = True) -> nn.Linear:
    """A linear layer with variance-preserving init: weights ``N(0, gain^2 / n_in)``, zero bias."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    nn.init.normal_(layer.weight, std=gain / n_in**0.5)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(_linear(n_in, n_hidden), nn.SiLU(), _linear(n_hidden, n_out, gain=SILU_GAIN))


#: Edges per block of an interaction's message computation. The per-edge temporaries (messages, their products with
#: the angular basis) and, in backward, their gradients then never exceed EDGE_BLOCK x (F + A) values, whatever the
#: system size; only what autograd must keep grows with the number of edges.
EDGE_BLOCK = 32768


def scatter_add_rows(out: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Return ``out`` (n, C) plus ``values`` (E, C) summed into rows ``index`` (E,), out of place (autograd keeps
    only the index, see :func:`scatter_sum`).
    """
    return out.scatter_add(0, index.view(-1, 1).expand(values.shape), values)


class _Interaction(nn.Module):
    def __init__(self, n_features: int, n_radial: int, n_angular: int):
        super().__init__()
        self.n_angular = n_angular
        self.filter = _mlp(n_radial, n_features, n_features + n_angular)
        self.source = _linear(n_features, n_features + n_angular, bias=False)
        self.update = _mlp(n_features + 2 * n_angular, n_features, n_features)
        self.edge_block = EDGE_BLOCK

    def forward(
        self,
        h: torch.Tensor,
        rbf: torch.Tensor,
        weight: torch.Tensor,
        edge_index: torch.Tensor,
        angular_basis: torch.Tensor | None,
    ) -> torch.Tensor:
        n, f, a = h.shape[0], h.shape[1], self.n_angular
        sources = self.source(h)  # (N, F + A)
        with_angular = a > 0 and angular_basis is not None
        scalar = h.new_zeros(n, f)
        # the vector (l = 1) and quadrupole (l = 2) moments, one (N, A) sum per basis function: the (E, A, 8) outer
        # product of the angular messages with the basis (and its gradient) is never formed
        moments: list[torch.Tensor] = []
        basis_blocks: list[torch.Tensor] = []
        if with_angular and angular_basis is not None:
            moments = [h.new_zeros(n, a) for _ in range(8)]
            basis_blocks = angular_basis.split(self.edge_block)
        # Edges in blocks (memory, see EDGE_BLOCK); the sums still run over the edges in their order, so the numbers
        # are those of one pass. split() rather than slices: one gradient buffer in backward, not one per block.
        i_blocks = edge_index[0].split(self.edge_block)
        j_blocks = edge_index[1].split(self.edge_block)
        rbf_blocks = rbf.split(self.edge_block)
        weight_blocks = weight.split(self.edge_block)
        for b in range(len(i_blocks)):
            i = i_blocks[b]
            messages = self.filter(rbf_blocks[b]) * weight_blocks[b][:, None] * sources[j_blocks[b]]  # (Eb, F + A)
            block_scalar, angular = messages.split([f, a], dim=1)
            scalar = scatter_add_rows(scalar, i, block_scalar)
            if with_angular:
                angular = angular.contiguous()  # autograd then keeps (Eb, A), not the whole message block
                basis = basis_blocks[b]
                for c in range(8):
                    moments[c] = scatter_add_rows(moments[c], i, angular * basis[:, c : c + 1])
        parts = [scalar]
        if with_angular:
            l1 = moments[0].square() + moments[1].square() + moments[2].square()
            l2 = moments[3].square() + moments[4].square() + moments[5].square() + moments[6].square()
            parts += [l1, l2 + moments[7].square()]
        return h + self.update(torch.cat(parts, dim=-1))


def angular_basis(unit: torch.Tensor) -> torch.Tensor:
    """Orthonormal l = 1 and l = 2 functions of unit vectors: (E, 3) -> (E, 8).

    Columns 0-2 are ``u``; columns 3-7 an orthonormal basis of traceless symmetric tensors ``u u^T - I/3``
    (``sqrt(3) xy``, ``sqrt(3) xz``, ``sqrt(3) yz``, ``sqrt(3)/2 (x^2 - y^2)``, ``(3 z^2 - 1)/2``), so the squared
    norms of their neighbour sums are rotation invariants.
    """
    x, y, z = unit.unbind(-1)
    root3 = 3.0**0.5
    l2 = torch.stack(
        [root3 * x * y, root3 * x * z, root3 * y * z, 0.5 * root3 * (x * x - y * y), 0.5 * (3.0 * z * z - 1.0)], dim=-1
    )
    return torch.cat([unit, l2], dim=-1)


class MessagePassingHost(ShortRangeHost):
    """Invariant moment message-passing network (see the module docstring).

    :param n_species: S, number of species (rows of the species embedding).
    :param cutoff: cutoff radius in Å.
    :param n_features: F, node feature width.
    :param n_radial: K, number of radial basis functions.
    :param n_interactions: number of interaction layers (1-4).
    :param radial_basis: ``'bessel'`` or ``'gaussian'``.
    :param cutoff_function: ``'cosine'`` or ``'polynomial'``.
    :param angular: include the vector and quadrupole moments (three-body information).
    :param readout_hidden: hidden width of the per-atom energy readout.
    """

    def __init__(
        self,
        n_species: int,
        cutoff: float = 5.0,
        n_features: int = 64,
        n_radial: int = 8,
        n_interactions: int = 2,
        radial_basis: str = 'bessel',
        cutoff_function: str = 'polynomial',
        angular: bool = True,
        readout_hidden: int = 32,
    ):
        super().__init__()
        self.n_features = int(n_features)
        self.cutoff = float(cutoff)
        self.embedding = nn.Embedding(n_species, n_features)
        self.rbf = embeddings.radial_basis(radial_basis, cutoff, n_radial)
        self.cut = embeddings.cutoff_function(cutoff_function, cutoff)
        n_angular = min(n_features, 16) if angular else 0
        self.angular = n_angular > 0
        self.interactions = nn.ModuleList(_Interaction(n_features, n_radial, n_angular) for _ in range(n_interactions))
        self.readout = _mlp(n_features, readout_hidden, 1)
        #: 1 / average number of neighbours, set from training data (normalises the message sums).
        self.register_buffer('inv_neighbors', torch.tensor(1.0 / 16.0))

    def forward(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """See :class:`ShortRangeHost`."""
        vectors = data[K.EDGE_VECTORS]
        lengths = data[K.EDGE_LENGTHS]
        edge_index = data[K.EDGE_INDEX]
        h = self.embedding(data[K.SPECIES_INDEX]).to(vectors.dtype)
        if K.NODE_STATE in data:
            h = h + data[K.NODE_STATE]
        rbf = self.rbf(lengths)
        weight = self.cut(lengths) * self.inv_neighbors.to(vectors.dtype)
        basis = angular_basis(vectors / lengths[:, None]) if self.angular else None
        for layer in self.interactions:
            h = layer(h, rbf, weight, edge_index, basis)
        return self.readout(h).squeeze(-1), h
