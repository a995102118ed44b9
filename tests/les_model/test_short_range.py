"""Edge blocks of the message-passing host: any block size gives the numbers of one pass over all edges."""

import torch

from les_model import _keys as K
from les_model.config import ModelConfig
from les_model.data.atoms import atoms_to_batch
from les_model.data.synthetic import water_like_box
from les_model.nn import short_range
from les_model.nn.model import LesModel


def _set_edge_block(model: LesModel, size: int) -> None:
    for layer in model.host.interactions:
        layer.edge_block = size


def test_edge_blocks_change_no_number(monkeypatch):
    """Energy, forces, stress and a force-loss parameter gradient (double backward, as in training) with blocks of
    97 edges equal those of a single block, in float64.
    """
    torch.manual_seed(0)
    config = ModelConfig(n_features=16, n_radial=4, n_interactions=2, cutoff=4.0, readout_hidden=8, charge_hidden=8)
    model = LesModel(config, species=[1, 8]).double()
    batch = atoms_to_batch([water_like_box(8, seed=1), water_like_box(6, seed=2)])
    calls = []
    scatter = short_range.scatter_add_rows
    monkeypatch.setattr(short_range, 'scatter_add_rows', lambda *args: calls.append(1) or scatter(*args))
    results, n_calls = [], []
    for size in (10**9, 97):
        _set_edge_block(model, size)
        model.zero_grad()
        out = model(batch, compute_forces=True, compute_stress=True, create_graph=True)
        out[K.FORCES].square().sum().backward()
        gradient = model.host.interactions[0].filter[0].weight.grad.clone()
        results.append((out[K.ENERGY].detach(), out[K.FORCES].detach(), out[K.STRESS].detach(), gradient))
        n_calls.append(len(calls))
    assert n_calls[1] - n_calls[0] > 5 * n_calls[0]  # the second pass really ran in many blocks
    for single, blocked in zip(*results, strict=True):
        assert torch.abs(single).max() > 0
        torch.testing.assert_close(blocked, single, rtol=1e-12, atol=1e-12)
