"""Direct k-space summation: k-vectors generated without the full cube of Miller indices, streamed sums."""

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from les_model.electrostatics.kspace import half_space_kvectors, half_space_miller_indices, kspace_energy
from les_model.units import COULOMB_CONSTANT

ROOT = Path(__file__).resolve().parents[3]


def _full_cube_miller_indices(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """The former algorithm: every index of the bounding cube, then the half space and the sphere kept."""
    recip = 2.0 * math.pi * torch.linalg.inv(cell).T
    n_max = [int(math.floor(k_cut * float(length) / (2.0 * math.pi))) for length in torch.linalg.norm(cell, dim=1)]
    ranges = [torch.arange(-m, m + 1, dtype=cell.dtype) for m in n_max]
    n = torch.cartesian_prod(*ranges).reshape(-1, 3)
    positive = (n[:, 0] > 0) | ((n[:, 0] == 0) & (n[:, 1] > 0)) | ((n[:, 0] == 0) & (n[:, 1] == 0) & (n[:, 2] > 0))
    n = n[positive]
    return n[torch.linalg.norm(n @ recip, dim=1) < k_cut]


CELLS = {
    'cubic': [[9.0, 0, 0], [0, 9.0, 0], [0, 0, 9.0]],
    'triclinic': [[10.0, 0, 0], [3.0, 8.5, 0], [-2.0, 1.5, 11.0]],
    'elongated': [[4.0, 0, 0], [0, 5.0, 0], [0, 0, 40.0]],
    'strongly_sheared': [[6.0, 0, 0], [5.5, 3.0, 0], [4.0, 2.5, 7.0]],
}


@pytest.mark.parametrize('name', sorted(CELLS))
@pytest.mark.parametrize('k_cut', [0.3, math.pi, 4.5])
def test_kvectors_equal_the_full_cube_selection(name, k_cut):
    """Same Miller indices, in the same order, as filtering the full cube (so sums are unchanged bit for bit)."""
    cell = torch.tensor(CELLS[name], dtype=torch.float64)
    expected = _full_cube_miller_indices(cell, k_cut)
    got = half_space_miller_indices(cell, k_cut)
    assert torch.equal(got, expected)
    recip = 2.0 * math.pi * torch.linalg.inv(cell).T
    torch.testing.assert_close(half_space_kvectors(cell, k_cut), expected @ recip, rtol=0, atol=1e-12)
    # one of each (k, -k) pair: no vector is the negative of another, and none is zero
    keys = {tuple(int(v) for v in row) for row in got}
    assert not any(tuple(-v for v in key) in keys for key in keys)
    assert (0, 0, 0) not in keys


def test_streamed_sum_does_not_depend_on_the_block_size():
    gen = torch.Generator().manual_seed(3)
    cell = torch.tensor(CELLS['triclinic'], dtype=torch.float64)
    positions = torch.rand(12, 3, generator=gen, dtype=torch.float64) @ cell
    charges = torch.randn(12, generator=gen, dtype=torch.float64)
    args = (positions, charges, cell, 1.0, math.pi, 0.2 * math.pi, COULOMB_CONSTANT)
    whole = kspace_energy(*args)
    small_blocks = kspace_energy(*args, chunk_elements=12 * 37)  # blocks of 37 k-vectors across plane boundaries
    assert float(small_blocks) == pytest.approx(float(whole), rel=1e-12)


def _continuum_pair_energy(r: float, sigma: float, k_cut: float, width: float) -> float:
    """LES energy of charges +1 and -1 at distance r in an infinite box: the k-space integral (2/pi) int dk ..."""
    k = np.linspace(0.0, k_cut, 400001)
    x = np.clip((k - (k_cut - width)) / width, 0.0, 1.0)
    g = np.exp(-0.5 * sigma**2 * k**2) * 0.5 * (1.0 + np.cos(np.pi * x))
    trapezoid = getattr(np, 'trapezoid', None) or np.trapz
    phi_r = 2.0 / np.pi * trapezoid(g * np.sinc(k * r / np.pi), k)
    phi_0 = 2.0 / np.pi * trapezoid(g, k)
    self_energy = 2.0 / (math.sqrt(2.0 * math.pi) * sigma)
    return COULOMB_CONSTANT * (-phi_r + phi_0 - self_energy)


def test_two_atoms_in_a_1000_angstrom_box_fit_in_small_memory():
    """~10^7 k-vectors: the former full cube alone took 0.9 GB here (its filtering > 1.5 GB; 24 GB at dl = 2 Å).

    Run in a subprocess so that its peak resident memory (torch included, ~0.3 GB) is its own: it must stay below
    1 GB. The energy of the pair must equal the continuum (infinite-box) LES energy computed by quadrature.
    """
    script = textwrap.dedent(
        """
        import json, resource, torch
        from les_model.electrostatics.latent_ewald import LatentEwald
        torch.set_num_threads(1)
        positions = torch.tensor([[500.0, 500.0, 500.0], [503.0, 500.0, 500.0]], dtype=torch.float64)
        charges = torch.tensor([1.0, -1.0], dtype=torch.float64)
        cell = torch.eye(3, dtype=torch.float64) * 1000.0
        module = LatentEwald(sigma=1.0, dl=6.0, backend='direct')
        module.periodic_energy(positions[:1], charges[:1], torch.eye(3, dtype=torch.float64) * 5.0)  # warm-up
        with torch.no_grad():
            energy = float(module.periodic_energy(positions, charges, cell))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({'energy': energy, 'peak_mb': peak}))
        """
    )
    result = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['peak_mb'] < 1024, out
    k_cut = 2.0 * math.pi / 6.0
    assert out['energy'] == pytest.approx(_continuum_pair_energy(3.0, 1.0, k_cut, 0.2 * k_cut), rel=1e-6)
