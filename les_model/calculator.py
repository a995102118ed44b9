"""LesCalculator: ASE calculator for one LES model or a committee of them.

``calc.results`` holds the committee mean of ``energy`` [eV], ``forces`` [eV/Å], ``stress`` [eV/Å^3, Voigt order
xx yy zz yz xz xy, 3D-periodic cells only], ``charges`` (latent) [e], ``dipole`` [e Å] and, when requested,
``bec`` (N,3,3) [e]; plus the committee disagreement (see :mod:`les_model.uncertainty`): ``max_force_std``,
``mean_force_std`` [eV/Å], ``energy_std_per_atom`` [eV/atom], ``max_charge_std`` [e] and the per-atom
``force_std`` [eV/Å] and ``charge_std`` [e]. The total charge and spin are read from ``atoms.info``
(``total_charge``, ``spin``) unless given to the constructor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from les_model import _keys as K
from les_model.data.atoms import atoms_to_batch
from les_model.io import load_model
from les_model.nn.graph_model import predict_with_graph_model
from les_model.nn.model import LesModel
from les_model.train.trainer import resolve_device, resolve_dtype
from les_model.uncertainty import FRAME_KEYS, committee_statistics

__all__ = ['LesCalculator']


class LesCalculator(Calculator):
    """ASE calculator backed by one or several :class:`~les_model.nn.model.LesModel`.

    :param models: model file paths and/or loaded models (several = a committee, results are averaged).
    :param device: ``'auto'``, ``'cpu'`` or ``'cuda'``.
    :param dtype: ``'float32'`` or ``'float64'``.
    :param compute_bec: always compute Born effective charges (otherwise only when ``'bec'`` is requested).
    :param total_charge: total charge in e overriding ``atoms.info['total_charge']``.
    :param spin: spin overriding ``atoms.info['spin']``.
    :param scripted: evaluate each member through its TorchScript-compiled
        :class:`~les_model.nn.graph_model.LesGraphModel` (same numbers; Born charges unavailable).
    """

    implemented_properties = ['energy', 'free_energy', 'forces', 'stress', 'charges', 'dipole', 'bec']

    def __init__(
        self,
        models: str | Path | LesModel | Sequence[str | Path | LesModel],
        device: str = 'auto',
        dtype: str = 'float64',
        compute_bec: bool = False,
        total_charge: float | None = None,
        spin: float | None = None,
        scripted: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(models, str | Path | LesModel):
            models = [models]
        if len(models) == 0:
            raise ValueError('LesCalculator needs at least one model, got none')
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        loaded = []
        for model in models:
            if not isinstance(model, LesModel):
                model = load_model(model, map_location=self.device)
            loaded.append(model.to(device=self.device, dtype=self.dtype).eval())
        self.models = loaded
        self.compute_bec = compute_bec
        self.total_charge = total_charge
        self.spin = spin
        self.scripted = None
        if scripted:
            from les_model.nn.graph_model import LesGraphModel

            self.scripted = [torch.jit.script(LesGraphModel(model)) for model in self.models]

    @property
    def committee_size(self) -> int:
        """Number of models."""
        return len(self.models)

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        """Compute all properties at once (see the module docstring for the keys and units)."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        batch = atoms_to_batch(atoms, dtype=self.dtype, device=self.device)
        if self.total_charge is not None:
            batch[K.TOTAL_CHARGE] = torch.full_like(batch[K.TOTAL_CHARGE], float(self.total_charge))
        if self.spin is not None:
            batch[K.SPIN] = torch.full_like(batch[K.SPIN], float(self.spin))
        periodic = bool(atoms.pbc.all())
        bec = self.compute_bec or 'bec' in properties
        if bec and self.scripted is not None:
            raise ValueError('Born effective charges are not available with scripted=True')
        predictions = []
        for member, model in enumerate(self.models):
            with _without_parameter_gradients(model):
                if self.scripted is not None:
                    # TorchScript's optimising executor differentiates its own fused graphs and keeps more of the
                    # forward pass for them (3,000 atoms: 1.9 GB instead of 1.2 GB) for no speed gain on CPU
                    with torch.jit.optimized_execution(False):
                        pred = predict_with_graph_model(
                            self.scripted[member], batch, model.cutoff, compute_stress=periodic
                        )
                else:
                    pred = model(batch, compute_forces=True, compute_stress=periodic, compute_bec=bec)
            predictions.append({k: v.detach() for k, v in pred.items() if k != K.NODE_FEATURES})
        stats = committee_statistics(predictions, batch[K.BATCH], batch[K.N_ATOMS], batch[K.TOTAL_CHARGE])

        def numpy(key):
            return stats[key].cpu().to(torch.float64).numpy()

        energy = float(numpy(K.ENERGY)[0])
        self.results['energy'] = energy
        self.results['free_energy'] = energy
        self.results['forces'] = numpy(K.FORCES)
        if periodic:
            s = numpy(K.STRESS)[0]
            self.results['stress'] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        self.results['charges'] = numpy(K.CHARGES)
        self.results['dipole'] = numpy(K.DIPOLE)[0]
        if bec:
            self.results['bec'] = numpy(K.BEC)
        for key in FRAME_KEYS:
            self.results[key] = float(numpy(key)[0])
        for key in ('force_std', 'charge_std'):
            if key in stats:
                self.results[key] = numpy(key)
        self.results['committee_energies'] = np.array([float(p[K.ENERGY][0]) for p in predictions])


@contextlib.contextmanager
def _without_parameter_gradients(model: torch.nn.Module):
    """Switch off ``requires_grad`` of the model's parameters for one call, then restore it.

    Forces and stress need gradients with respect to positions and strain only; with parameters that require grad,
    autograd also keeps every layer's input for the weight gradients (at 3,000 atoms, a fifth of the peak memory).
    Restored afterwards, so a model the caller is training is left as it was.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
