"""Benchmark: energy + forces time of the electrostatics engine against a short-range neighbour-list pass.

Systems are random neutral charge sets at a water-like number density (0.1 atoms / Å^3) on a jittered cubic grid (no
overlapping atoms). For every size the script times an energy evaluation plus autograd forces (best of ``--repeats``
after one warm-up) for:

* ``short_range``: vesin neighbour list (5 Å) + a smooth pair potential over its edges (the yardstick);
* ``mlp_host`` (with ``--mlp``): the project's default short-range network (MessagePassingHost, 5 Å), float64;
* ``les_direct`` / ``les_mesh``: LatentEwald (sigma 1 Å, dl 2 Å) with the direct k-sum or the particle mesh;
* ``pme``: exact point-charge Coulomb by particle-mesh Ewald (smooth PME, accuracy 1e-5);
* ``ewald``: exact point-charge Ewald (accuracy 1e-8), small sizes only.

It prints a table, the fitted scaling exponents (least squares of log t against log N) and the long-range cost
relative to the short-range pass at the largest size. ``--clock cpu`` reports process CPU time instead of wall time
(useful on a shared machine). ``--structure FILE`` (any ase-readable periodic file) replaces the random systems by
that structure (replicated to about the requested sizes) with random neutral charges.

``--pme-table`` instead times the three mesh summations side by side (energy + forces, one thread by default):

* ``les_mesh``: the LES mesh (:func:`~les_model.electrostatics.mesh.mesh_les_energy`, sigma 1 Å, dl 2 Å, B-splines
  of order 5, mesh factor 1.5);
* ``pme_own``: the project's PME for point charges (:func:`~les_model.electrostatics.pme.pme_energy`, accuracy
  1e-5: the LES mesh code plus the real-space erfc sum over a vesin neighbour list);
* ``pme_torchpme``: the same PME with torch-pme's reciprocal part (``PMECalculator``, Lagrange interpolation with 6
  nodes, mesh spacing from the accuracy; the former ``pme_energy(..., implementation='torchpme')``);
* ``torchpme_les``: torch-pme's ``PMECalculator`` at LES settings (Gaussian charges of sigma 1 Å, no real-space
  pairs, mesh spacing dl / 3 as the LES mesh, 4 interpolation nodes), the like-for-like alternative to ``les_mesh``,

with the ratios ``pme_torchpme / pme_own`` and ``torchpme_les / les_mesh``.

Usage: ``python benchmarks/electrostatics.py [--sizes 192 768 3072 12288] [--repeats 3] [--threads 1] [--clock cpu]``
or ``python benchmarks/electrostatics.py --pme-table [--sizes 768 3072 12288]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from les_model.data.neighborlist import edge_vectors, neighbor_list
from les_model.electrostatics.coulomb import CoulombEnergy
from les_model.electrostatics.latent_ewald import LatentEwald
from les_model.electrostatics.mesh import mesh_les_energy
from les_model.electrostatics.pme import pme_energy, pme_parameters
from les_model.electrostatics.realspace import real_space_pairs
from les_model.units import COULOMB_CONSTANT

DENSITY = 0.1


def random_system(n_atoms: int, seed: int, dtype, device, structure=None):
    """Positions, neutral charges, cell, pbc, batch for one periodic system of about ``n_atoms`` atoms."""
    rng = np.random.default_rng(seed)
    if structure is not None:
        reps = max(1, round((n_atoms / len(structure)) ** (1.0 / 3.0)))
        atoms = structure.repeat((reps, reps, reps))
        positions, cell = atoms.positions, atoms.cell.array
    else:
        per_side = math.ceil(n_atoms ** (1.0 / 3.0))
        length = (n_atoms / DENSITY) ** (1.0 / 3.0)
        spacing = length / per_side
        grid = np.stack(np.meshgrid(*[np.arange(per_side)] * 3, indexing='ij'), axis=-1).reshape(-1, 3)
        grid = grid[rng.permutation(len(grid))[:n_atoms]]
        positions = (grid + rng.uniform(-0.3, 0.3, size=grid.shape)) * spacing
        cell = np.eye(3) * length
    charges = rng.normal(size=len(positions))
    charges -= charges.mean()

    def tensor(x):
        return torch.as_tensor(x, dtype=dtype, device=device)

    n = len(positions)
    return {
        'positions': tensor(positions),
        'charges': tensor(charges),
        'cell': tensor(cell).unsqueeze(0),
        'pbc': torch.ones(1, 3, dtype=torch.bool, device=device),
        'batch': torch.zeros(n, dtype=torch.int64, device=device),
    }


def short_range_energy(data, positions, cutoff=5.0):
    """Neighbour list + smooth pair potential ``sum exp(-r) (1 - r / rc)^2`` over a full list (the yardstick)."""
    nl = neighbor_list(positions.detach(), data['cell'], data['pbc'], data['batch'], cutoff, n_structures=1)
    r = torch.linalg.norm(edge_vectors(positions, data['cell'], data['batch'], nl), dim=1)
    return 0.5 * (torch.exp(-r) * (1.0 - r / cutoff) ** 2).sum()


def message_passing_energy_fn(dtype, device):
    """Energy function of the project's default short-range host (MessagePassingHost, 5 Å) as a second yardstick."""
    from les_model import _keys as K
    from les_model.nn.short_range import MessagePassingHost

    host = MessagePassingHost(n_species=1, cutoff=5.0).to(device=device, dtype=dtype)

    def energy(data, positions):
        nl = neighbor_list(positions.detach(), data['cell'], data['pbc'], data['batch'], host.cutoff, n_structures=1)
        vectors = edge_vectors(positions, data['cell'], data['batch'], nl)
        graph = {
            K.SPECIES_INDEX: torch.zeros(positions.shape[0], dtype=torch.int64, device=positions.device),
            K.EDGE_INDEX: nl.edge_index,
            K.EDGE_VECTORS: vectors,
            K.EDGE_LENGTHS: torch.linalg.norm(vectors, dim=1),
            K.BATCH: data['batch'],
        }
        node_energy, _ = host(graph)
        return node_energy.sum()

    return energy


def make_methods():
    les_direct = LatentEwald(sigma=1.0, dl=2.0, backend='direct')
    les_mesh = LatentEwald(sigma=1.0, dl=2.0, backend='mesh')
    pme = CoulombEnergy(method='pme', pme_accuracy=1e-5)
    ewald = CoulombEnergy(method='ewald', accuracy=1e-8)

    def wrap(module):
        def energy(data, positions):
            return module(positions, data['charges'], data['cell'], data['pbc'], data['batch'], 1).sum()

        return energy

    return {
        'short_range': short_range_energy,
        'les_direct': wrap(les_direct),
        'les_mesh': wrap(les_mesh),
        'pme': wrap(pme),
        'ewald': wrap(ewald),
    }


def make_pme_methods(sigma: float = 1.0, dl: float = 2.0):
    """Energy functions of the mesh summations compared by ``--pme-table`` (see the module docstring)."""
    import torchpme

    k_cut = 2.0 * math.pi / dl

    def les_mesh(data, positions):
        return mesh_les_energy(positions, data['charges'], data['cell'][0], sigma, k_cut, 0.2 * k_cut)

    def pme_own(data, positions):
        return pme_energy(positions, data['charges'], data['cell'][0], accuracy=1e-5)

    def pme_torchpme(data, positions, accuracy=1e-5):
        cell, charges = data['cell'][0], data['charges']
        parameters = pme_parameters(accuracy)
        p = math.sqrt(-math.log(accuracy))
        # torch-pme (Lagrange, 6 nodes): relative error ~ 1e-4 (h / sigma)^6
        spacing = parameters.smearing * min((accuracy / 1e-4) ** (1.0 / 6.0), math.pi / p)
        calculator = torchpme.PMECalculator(
            torchpme.CoulombPotential(smearing=parameters.smearing), mesh_spacing=spacing, interpolation_nodes=6
        ).to(dtype=positions.dtype, device=positions.device)
        i, j, r, _ = real_space_pairs(positions, cell, parameters.r_cut)
        potential = calculator(charges.unsqueeze(1), cell, positions, torch.stack([i, j], dim=1), r)
        return COULOMB_CONSTANT * (charges * potential[:, 0]).sum()

    def torchpme_les(data, positions):
        calculator = torchpme.PMECalculator(
            torchpme.CoulombPotential(smearing=sigma), mesh_spacing=dl / 3.0, interpolation_nodes=4
        ).to(dtype=positions.dtype, device=positions.device)
        no_pairs = torch.zeros(0, 2, dtype=torch.int64, device=positions.device)
        potential = calculator(
            charges=data['charges'].unsqueeze(1),
            cell=data['cell'][0],
            positions=positions,
            neighbor_indices=no_pairs,
            neighbor_distances=positions.new_zeros(0),
        )
        return COULOMB_CONSTANT * (data['charges'] * potential[:, 0]).sum()

    return {'les_mesh': les_mesh, 'pme_own': pme_own, 'pme_torchpme': pme_torchpme, 'torchpme_les': torchpme_les}


def pme_table(sizes, repeats: int, clock, dtype, device) -> dict:
    """Time :func:`make_pme_methods` at every size, print the table with ratios; returns sizes and times."""
    methods = make_pme_methods()
    times = {name: [] for name in methods}
    actual = []
    for n in sizes:
        data = random_system(n, seed=n, dtype=dtype, device=device)
        actual.append(data['positions'].shape[0])
        for name, fn in methods.items():
            times[name].append(time_energy_forces(fn, data, repeats, clock))
    print(f'# energy + forces time [ms], {torch.get_num_threads()} thread(s), best of {repeats}')
    print(f'{"N":>7} ' + ' '.join(f'{name:>13}' for name in methods) + f' {"torchpme/own":>13} {"tpme_les/les":>13}')
    for k, n in enumerate(actual):
        cells = ' '.join(f'{1e3 * times[name][k]:13.2f}' for name in methods)
        ratio_pme = times['pme_torchpme'][k] / times['pme_own'][k]
        ratio_les = times['torchpme_les'][k] / times['les_mesh'][k]
        print(f'{n:>7} {cells} {ratio_pme:13.2f} {ratio_les:13.2f}')
    return {'sizes': actual, 'times': times}


def time_energy_forces(energy_fn, data, repeats: int, clock=time.perf_counter) -> float:
    """Best time in s of one energy + autograd-forces evaluation over ``repeats`` runs (after one warm-up).

    The minimum is the least sensitive statistic on a shared machine; ``clock=time.process_time`` measures CPU time
    of this process instead of wall time (useful when other jobs compete for the cores).
    """
    times = []
    for k in range(repeats + 1):
        if data['positions'].is_cuda:
            torch.cuda.synchronize()
        start = clock()
        positions = data['positions'].clone().requires_grad_(True)
        energy = energy_fn(data, positions)
        (forces,) = torch.autograd.grad(-energy, positions)
        if forces.is_cuda:
            torch.cuda.synchronize()
        if k:
            times.append(clock() - start)
    return min(times)


def fit_exponent(sizes, times) -> float:
    pairs = [(math.log(n), math.log(t)) for n, t in zip(sizes, times, strict=True) if t is not None]
    if len(pairs) < 2:
        return float('nan')
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def main(argv=None) -> dict:
    """Run the benchmark; returns ``{'sizes': [...], 'times': {method: [seconds or None]}}``."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[192, 768, 3072, 12288])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads (0: leave unchanged)')
    parser.add_argument('--max-direct', type=int, default=3072, help='largest N for les_direct')
    parser.add_argument('--max-ewald', type=int, default=768, help='largest N for exact Ewald')
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float64')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--structure', default=None, help='ase-readable periodic structure to replicate')
    parser.add_argument(
        '--mlp', action='store_true', help='also time the default MessagePassingHost short-range network as yardstick'
    )
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall', help='wall time or process CPU time')
    parser.add_argument('--pme-table', action='store_true', help='time LES mesh, own PME and torch-pme side by side')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.pme_table:
        clock = time.perf_counter if args.clock == 'wall' else time.process_time
        return pme_table(args.sizes, args.repeats, clock, dtype, args.device)
    structure = None
    if args.structure:
        import ase.io

        structure = ase.io.read(args.structure)
    methods = make_methods()
    if args.mlp:
        methods = {'mlp_host': message_passing_energy_fn(dtype, args.device), **methods}
    limits = {'les_direct': args.max_direct, 'ewald': args.max_ewald}
    results = {name: [] for name in methods}
    sizes = []
    for n in args.sizes:
        data = random_system(n, seed=n, dtype=dtype, device=args.device, structure=structure)
        sizes.append(data['positions'].shape[0])
        for name, fn in methods.items():
            if sizes[-1] > limits.get(name, math.inf):
                results[name].append(None)
                continue
            clock = time.perf_counter if args.clock == 'wall' else time.process_time
            results[name].append(time_energy_forces(fn, data, args.repeats, clock))

    threads = torch.get_num_threads()
    settings = f'best of {args.repeats}, {args.dtype}, {args.device}, {threads} threads'
    print(f'# energy + forces {args.clock} time [ms] ({settings})')
    header = f'{"N":>7} ' + ' '.join(f'{name:>12}' for name in methods)
    print(header)
    for k, n in enumerate(sizes):
        cells = [f'{1e3 * results[m][k]:12.2f}' if results[m][k] is not None else f'{"-":>12}' for m in methods]
        print(f'{n:>7} ' + ' '.join(cells))
    print('# fitted scaling exponent t ~ N^x (all sizes; last two sizes)')
    print(f'{"x":>7} ' + ' '.join(f'{fit_exponent(sizes, results[m]):12.2f}' for m in methods))
    print(f'{"x_last":>7} ' + ' '.join(f'{fit_exponent(sizes[-2:], results[m][-2:]):12.2f}' for m in methods))
    largest = len(sizes) - 1
    for yardstick in ('short_range', 'mlp_host'):
        if yardstick not in methods:
            continue
        reference = results[yardstick][largest]
        print(f'# long-range / {yardstick} time at N = {sizes[largest]}')
        for name in methods:
            if name not in ('short_range', 'mlp_host') and results[name][largest] is not None:
                print(f'{name:>12}: {results[name][largest] / reference:8.2f}')
    return {'sizes': sizes, 'times': results}


if __name__ == '__main__':
    main()
