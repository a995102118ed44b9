"""Benchmark: LO-TO splitting of NaCl through the project's phonon workflow against phonopy's published reference.

Takes phonopy's NaCl test files as arguments (displacement yaml with the unit cell, FORCE_SETS of the 2x2x2
conventional supercell computed with VASP, BORN with eps_inf = 2.43533967 and Z* = +-1.086875) and runs
:func:`les_model.applications.phonons.run.run_phonons` on them: force constants from the given force sets, the
non-analytic correction
from the unit-cell Born charges (ASR enforced, symmetrised), Gamma approached along [100]. phonopy's reference values
are TO 4.6164 THz and LO 7.3963 THz; the check passes within ``--tolerance`` (1e-3 THz).

The NAC unit factor is the BORN file's (14.400, as in the reference); ``--factor`` overrides it (e.g. the project's
k_e = 14.399645 eV Å / e^2, which shifts LO by about 6e-5 THz). ``--output DIR`` also writes the phonopy files and
PNG plots. Exit status 0 when both frequencies are within tolerance, 1 otherwise.

Usage: ``python benchmarks/phonons.py DISP_YAML FORCE_SETS BORN [--output DIR] [--factor F] [--tolerance T]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import phonopy
from phonopy.file_IO import parse_BORN, parse_FORCE_SETS

from les_model.applications.phonons.born import unitcell_born_from_primitive
from les_model.applications.phonons.compute import create_phonopy, phonopy_to_atoms
from les_model.applications.phonons.run import run_phonons

REFERENCE_TO_THZ = 4.6164
REFERENCE_LO_THZ = 7.3963


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the frequencies and their differences from the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('disp_yaml', help='phonopy displacement yaml (unit cell, supercell and primitive matrices)')
    parser.add_argument('force_sets', help='phonopy FORCE_SETS file')
    parser.add_argument('born', help='phonopy BORN file')
    parser.add_argument('--output', default=None, help='directory for phonopy files and PNG plots')
    parser.add_argument('--factor', type=float, default=None, help='NAC factor in eV Å / e^2 (default: from BORN)')
    parser.add_argument('--tolerance', type=float, default=1e-3, help='allowed deviation in THz')
    args = parser.parse_args(argv)

    start = time.perf_counter()
    reference = phonopy.load(args.disp_yaml, produce_fc=False, log_level=0)
    atoms = phonopy_to_atoms(reference.unitcell)
    supercell_matrix = np.asarray(reference.supercell_matrix)
    primitive_matrix = np.asarray(reference.primitive_matrix)
    dataset = parse_FORCE_SETS(natom=len(reference.supercell), filename=args.force_sets)

    # Born charges of the BORN file (independent atoms of the primitive cell) expanded to the unit cell
    setup = create_phonopy(atoms, supercell_matrix, primitive_matrix)
    born_file = parse_BORN(setup.primitive, symprec=setup.symmetry.tolerance, filename=args.born)
    born_unit = unitcell_born_from_primitive(setup, born_file['born'])
    factor = float(born_file['factor']) if args.factor is None else args.factor

    result = run_phonons(
        atoms,
        force_sets=dataset,
        supercell_matrix=supercell_matrix,
        primitive_matrix=primitive_matrix,
        born=born_unit,
        eps_inf=born_file['dielectric'],
        nac_factor=factor,
        q_direction=(1.0, 0.0, 0.0),
        band_npoints=51 if args.output else 0,
        dos_mesh=20 if args.output else None,
        output_dir=args.output,
    )
    elapsed = time.perf_counter() - start
    optical = result.gamma[3:]
    to, lo = float(np.mean(optical[:2])), float(optical[2])
    d_to, d_lo = to - REFERENCE_TO_THZ, lo - REFERENCE_LO_THZ
    print(f'NaCl, {len(result.phonon.supercell)}-atom supercell, {len(dataset["first_atoms"])} displacement(s)')
    print(f'eps_inf = {np.diag(result.nac["dielectric"]).round(8).tolist()}, NAC factor = {factor}')
    print(f'Z* (primitive, xx) = {result.nac["born"][:, 0, 0].round(6).tolist()}')
    print(f'Gamma frequencies without NAC [THz]: {np.round(result.gamma_analytic, 6).tolist()}')
    print(f'Gamma frequencies with NAC along [100] [THz]: {np.round(result.gamma, 6).tolist()}')
    print(f'TO = {to:.6f} THz (reference {REFERENCE_TO_THZ}, difference {d_to:+.2e} THz)')
    print(f'LO = {lo:.6f} THz (reference {REFERENCE_LO_THZ}, difference {d_lo:+.2e} THz)')
    for kind, path in result.files.items():
        print(f'wrote {kind}: {path}')
    ok = abs(d_to) <= args.tolerance and abs(d_lo) <= args.tolerance
    print(f'{"PASS" if ok else "FAIL"} (tolerance {args.tolerance} THz), {elapsed:.2f} s')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
