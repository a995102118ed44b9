"""Physics checks applied to every host/charge-model variant of LesModel (float64, tiny random models)."""

from __future__ import annotations

import importlib.util

import ase
import numpy as np
import pytest
import torch

from les_model import _keys as K
from les_model.config import ModelConfig
from les_model.data.atoms import atoms_to_batch
from les_model.nn.mace_options import MPNN_ONLY
from les_model.nn.model import LesModel
from les_model.testing.physics import (
    check_rotation_invariance,
    check_translation_invariance,
    finite_difference_forces,
    finite_difference_stress,
)
from les_model.testing.structures import random_ionic_system

TINY = {'n_features': 8, 'n_radial': 4, 'readout_hidden': 8, 'charge_hidden': 8, 'cutoff': 3.5}

VARIANTS = {
    'short_range': {'long_range': False},
    'les_latent': {},
    'les_qeq': {'charge_model': 'qeq'},
    'les_gaussian_cosine_noangular': {'radial_basis': 'gaussian', 'cutoff_function': 'cosine', 'angular': False},
    'les_spin_two_layers': {'spin_embedding': True, 'n_interactions': 2},
    # MACE as the host (optional extra `mace`, installed by the `dev` extra); small so the checks stay fast.
    'mace': {'backbone': 'mace', 'mace': {'num_interactions': 2, 'correlation': 2, 'max_ell': 1}},
}
HAS_MACE = importlib.util.find_spec('mace') is not None


def _periodic(seed=0, n=10):
    atoms = random_ionic_system(n, density=0.05, min_distance=1.2, triclinic=True, seed=seed)
    atoms.numbers = np.random.default_rng(seed).choice([1, 8, 11], size=n)
    atoms.set_initial_charges(None)
    atoms.info['total_charge'] = 1.0
    atoms.info['spin'] = 1.0
    return atoms


def _molecule(seed=1, n=6):
    rng = np.random.default_rng(seed)
    positions = np.array([[0.0, 0.0, 0.0]])
    while len(positions) < n:
        trial = rng.uniform(0.0, 3.5, 3)
        if np.linalg.norm(positions - trial, axis=1).min() > 1.0:
            positions = np.vstack([positions, trial])
    return ase.Atoms(numbers=rng.choice([1, 8], size=n), positions=positions, pbc=False)


def _model(variant: str, seed: int = 0) -> LesModel:
    torch.manual_seed(seed)
    settings = {**TINY, **VARIANTS[variant]}
    if settings.get('backbone') == 'mace':  # the mpnn-only settings are refused with the MACE host (they did nothing)
        settings = {k: v for k, v in settings.items() if k not in MPNN_ONLY}
    model = LesModel(ModelConfig(**settings), species=[1, 8, 11], reference_energies={8: -2.0})
    model.energy_scale.fill_(0.5)
    return model.double()


def _energy_fn(model, batch):
    def energy(positions, cell):
        data = dict(batch, **{K.POSITIONS: positions, K.CELL: cell})
        return model(data, compute_forces=False)[K.ENERGY]

    return energy


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.skipif(name == 'mace' and not HAS_MACE, reason='needs mace-torch'))
        for name in sorted(VARIANTS)
    ]
)
def variant(request):
    return request.param


def test_forces_match_finite_differences(variant):
    model = _model(variant)
    batch = atoms_to_batch([_periodic(), _molecule()])
    forces = model(batch)[K.FORCES].detach()
    atoms = [0, 3, 11, 14]
    fd = finite_difference_forces(_energy_fn(model, batch), batch[K.POSITIONS], batch[K.CELL], delta=1e-5, atoms=atoms)
    np.testing.assert_allclose(forces[atoms].numpy(), fd[atoms].numpy(), atol=1e-7, rtol=1e-5)


def test_stress_matches_finite_differences(variant):
    model = _model(variant)
    batch = atoms_to_batch([_periodic(2)])
    stress = model(batch, compute_stress=True)[K.STRESS].detach()
    fd = finite_difference_stress(_energy_fn(model, batch), batch[K.POSITIONS], batch[K.CELL], batch[K.BATCH])
    np.testing.assert_allclose(stress.numpy(), fd.numpy(), atol=1e-8, rtol=1e-5)
    assert torch.allclose(stress, stress.transpose(1, 2), atol=1e-12)


def test_rotation_and_translation_invariance(variant):
    model = _model(variant)
    batch = atoms_to_batch([_periodic(3), _molecule(4)])
    fn = _energy_fn(model, batch)
    generator = torch.Generator().manual_seed(0)
    check_rotation_invariance(fn, batch[K.POSITIONS], batch[K.CELL], batch[K.BATCH], atol=1e-9, generator=generator)
    check_translation_invariance(fn, batch[K.POSITIONS], batch[K.CELL], atol=1e-9)


def test_batch_equals_single_and_charge_constraint(variant):
    model = _model(variant)
    structures = [_periodic(5), _molecule(6), _periodic(7, n=7)]
    joint = model(atoms_to_batch(structures))
    start = 0
    for b, atoms in enumerate(structures):
        single = model(atoms_to_batch(atoms))
        n = len(atoms)
        assert torch.allclose(joint[K.ENERGY][b], single[K.ENERGY][0], atol=1e-10)
        assert torch.allclose(joint[K.FORCES][start : start + n], single[K.FORCES], atol=1e-10)
        start += n
    if variant != 'short_range':
        totals = torch.zeros(3, dtype=torch.float64).index_add(0, atoms_to_batch(structures)[K.BATCH], joint[K.CHARGES])
        np.testing.assert_allclose(totals.detach().numpy(), [1.0, 0.0, 1.0], atol=1e-10)


def test_size_extensivity(variant):
    """A 2x1x1 supercell of a periodic structure has exactly twice the energy (short and long range alike)."""
    model = _model(variant)
    atoms = _periodic(8)
    atoms.info['total_charge'] = 0.0
    atoms.info['spin'] = 0.0
    supercell = atoms.repeat((2, 1, 1))
    e1 = model(atoms_to_batch(atoms), compute_forces=False)[K.ENERGY]
    e2 = model(atoms_to_batch(supercell), compute_forces=False)[K.ENERGY]
    np.testing.assert_allclose(float(e2.detach()), 2.0 * float(e1.detach()), rtol=1e-9, atol=1e-9)


def test_float32_matches_float64(variant):
    model = _model(variant)
    batch = atoms_to_batch([_periodic(9), _molecule(10)])
    out64 = model(batch)
    out32 = model.float()(atoms_to_batch([_periodic(9), _molecule(10)], dtype=torch.float32))
    # The QEq solve amplifies float32 rounding by the condition number of its matrix (~1e2 here).
    rtol = 5e-5 if variant == 'les_qeq' else 1e-5
    for key in (K.ENERGY, K.FORCES, K.CHARGES):
        np.testing.assert_allclose(out32[key].detach().numpy(), out64[key].detach().numpy(), atol=1e-4, rtol=rtol)


def test_dtype_mismatch_is_reported():
    model = _model('les_latent')
    with pytest.raises(TypeError, match='does not match the model dtype'):
        model(atoms_to_batch(_molecule(), dtype=torch.float32))


def test_unknown_species_is_reported():
    model = _model('short_range')
    with pytest.raises(ValueError, match=r'atomic numbers \[6\] are not among the model species'):
        model(atoms_to_batch(ase.Atoms('CH', positions=[[0, 0, 0], [1.1, 0, 0]])))


def test_born_charges_of_molecule_are_dipole_derivatives():
    """BEC from the model equal finite differences of its dipole, and sum to zero for a neutral molecule."""
    model = _model('les_latent')
    atoms = _molecule(11)
    batch = atoms_to_batch(atoms)
    bec = model(batch, compute_bec=True)[K.BEC].detach()
    delta = 1e-5
    for i, b in [(0, 0), (2, 1), (5, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, b] += delta
        minus.positions[i, b] -= delta
        mu_p = model(atoms_to_batch(plus), compute_forces=False)[K.DIPOLE][0].detach()
        mu_m = model(atoms_to_batch(minus), compute_forces=False)[K.DIPOLE][0].detach()
        np.testing.assert_allclose(bec[i, :, b].numpy(), ((mu_p - mu_m) / (2 * delta)).numpy(), atol=1e-7)
    np.testing.assert_allclose(bec.sum(0).numpy(), np.zeros((3, 3)), atol=1e-9)


@pytest.mark.skipif(HAS_MACE, reason='mace-torch is installed')
def test_mace_backbone_without_mace_names_the_extra():
    with pytest.raises(ImportError, match=r'aiida-les\[mace\]'):
        LesModel(ModelConfig(backbone='mace'), species=[1, 8])


@pytest.mark.gpu
def test_cuda_matches_cpu():
    model = _model('les_latent')
    batch = atoms_to_batch([_periodic(12), _molecule(13)])
    cpu = model(batch, compute_stress=True)
    gpu = model.to('cuda')(atoms_to_batch([_periodic(12), _molecule(13)], device='cuda'), compute_stress=True)
    for key in (K.ENERGY, K.FORCES, K.STRESS, K.CHARGES):
        np.testing.assert_allclose(gpu[key].detach().cpu().numpy(), cpu[key].detach().numpy(), atol=1e-8)
