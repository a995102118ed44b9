"""Load test of les.label: 200 small Cu/Al cells labelled by EMT under ``max_concurrent=4``, all accounted for.

EMT is an independent reference here: each returned energy and force is compared with a direct in-process EMT
evaluation of the same cell, so a label that was mixed up between structures (wrong ``source_index``) fails the test.
The measured throughput (structures per second, wall clock) is printed; run with ``-s`` to see it.
"""

import os
import shutil
import sys
import time

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT as EmtCalculator

from workchains.label.label import LesLabelWorkChain

LES_ASE_LABEL = shutil.which('les-ase-label') or shutil.which('les-ase-label', path=os.path.dirname(sys.executable))
EMT = {'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'}
N_STRUCTURES = 200
MAX_CONCURRENT = 4


def _cells(n: int) -> list:
    """Return ``n`` rattled 4-atom fcc Cu, Al and CuAl (L1_0-like) cells with distinct lattice constants."""
    rng = np.random.default_rng(2026)
    cells = []
    for index in range(n):
        kind = index % 3
        if kind == 0:
            atoms = bulk('Cu', 'fcc', a=3.61 * (1 + 0.02 * rng.uniform(-1, 1)), cubic=True)
        elif kind == 1:
            atoms = bulk('Al', 'fcc', a=4.05 * (1 + 0.02 * rng.uniform(-1, 1)), cubic=True)
        else:
            atoms = bulk('Cu', 'fcc', a=3.80 * (1 + 0.02 * rng.uniform(-1, 1)), cubic=True)
            atoms.symbols[[1, 2]] = 'Al'
        atoms.rattle(0.05, seed=index)
        cells.append(atoms)
    return cells


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(LES_ASE_LABEL is None, reason='needs les-ase-label')
def test_label_200_structures_max_concurrent_4(aiida_code_installed):
    code = aiida_code_installed(
        label='les-ase-label-load', default_calc_job_plugin='les.ase_label', filepath_executable=LES_ASE_LABEL
    )
    cells = _cells(N_STRUCTURES)
    structures = [orm.StructureData(ase=atoms) for atoms in cells]
    builder = LesLabelWorkChain.get_builder_from_protocol(
        code, structures, labeller='ase', calculator=EMT, overrides={'max_concurrent': MAX_CONCURRENT}
    )
    started = time.perf_counter()
    results, node = run_get_node(builder)
    elapsed = time.perf_counter() - started
    assert node.is_finished_ok, node.exit_message

    report = results['report'].get_dict()
    assert report['n_requested'] == N_STRUCTURES
    assert report['n_labelled'] == N_STRUCTURES, report['failures']
    assert report['n_failed'] == 0

    # Never more than max_concurrent labelling jobs alive at once: sweep over [ctime, mtime] (mtime = sealing time).
    children = [link.node for link in node.base.links.get_outgoing(node_class=orm.CalcJobNode).all()]
    assert len(children) == N_STRUCTURES
    assert all(child.is_finished_ok for child in children)
    assert _max_overlap(children) <= MAX_CONCURRENT

    # Each structure appears exactly once, with the labels EMT gives for that very cell.
    frames = results['labelled'].get_ase()
    indices = sorted(int(frame.info['source_index']) for frame in frames)
    assert indices == list(range(N_STRUCTURES))
    for frame in frames:
        reference = cells[int(frame.info['source_index'])].copy()
        reference.calc = EmtCalculator()
        np.testing.assert_allclose(frame.positions, reference.positions, atol=1e-6)
        np.testing.assert_allclose(frame.get_potential_energy(), reference.get_potential_energy(), atol=1e-6)
        np.testing.assert_allclose(frame.get_forces(), reference.get_forces(), atol=1e-6)
        np.testing.assert_allclose(frame.get_stress(), reference.get_stress(), atol=1e-7)

    throughput = N_STRUCTURES / elapsed
    print(
        f'\nles.label load: {N_STRUCTURES} structures, max_concurrent={MAX_CONCURRENT}: {elapsed:.1f} s wall, '
        f'{throughput:.2f} structures/s ({elapsed / N_STRUCTURES:.2f} s per structure)'
    )
    assert throughput > 0


def _max_overlap(nodes) -> int:
    """Return the largest number of nodes whose [ctime, mtime] intervals overlap at one instant."""
    events = sorted([(n.ctime, 1) for n in nodes] + [(n.mtime, -1) for n in nodes], key=lambda e: (e[0], e[1]))
    alive = peak = 0
    for _, step in events:
        alive += step
        peak = max(peak, alive)
    return peak
