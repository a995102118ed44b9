"""``les-export MODEL [MODEL ...] -o model.pt``: write one LES model or a committee as a metatomic model.

The output is a TorchScript :class:`metatomic.torch.AtomisticModel` (see :mod:`les_model.metatomic_model`) that
ASE (``metatomic-ase``), i-PI, TorchSim and LAMMPS (``pair_style metatomic``) run: energy in eV (committee mean;
forces and stress by the engine's autograd), lengths in Å, latent charges as ``les::charges`` and, for a
committee, ``energy_ensemble`` and ``energy_uncertainty``. Needs the ``export`` extra (``metatomic-torch``).
"""

from __future__ import annotations

import argparse
import sys

from les_model.cli._common import CliFailure, check_files, run_main
from les_model.cli.exit_codes import ExitCode

__all__ = ['main']


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='les-export',
        description='Export one LES model or a committee (energy = committee mean) as a metatomic model file.',
    )
    parser.add_argument('models', nargs='+', help='les_model model files (.pt from les-train); several = committee')
    parser.add_argument('-o', '--output', required=True, help='metatomic model file to write (e.g. model.pt)')
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float64', help='model dtype')
    parser.add_argument(
        '--total-charge-input',
        action='store_true',
        help="read each structure's total charge [e] from metatomic's `charge` input (ASE: atoms.info['charge']; "
        'not every engine provides it); default: every structure is neutral',
    )
    parser.add_argument('--name', default='LES potential', help='model name in the metadata')
    return parser


def _run(argv) -> ExitCode:
    args = _parser().parse_args(argv)
    check_files(*args.models)

    import torch

    from les_model.io import IncompatibleModelError, load_model

    try:
        from les_model.metatomic_model import export_metatomic
    except ImportError as exc:
        raise CliFailure(
            ExitCode.UNEXPECTED, f'metatomic-torch is not installed ({exc}); pip install "aiida-les[export]"'
        ) from exc
    dtype = getattr(torch, args.dtype)
    try:
        models = [load_model(path, map_location='cpu', dtype=dtype) for path in args.models]
    except IncompatibleModelError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    try:
        path = export_metatomic(models, args.output, dtype=dtype, total_charge_input=args.total_charge_input)
    except (ValueError, NotImplementedError) as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    print(f'les-export: wrote {path} ({len(models)} model(s), cutoff {models[0].cutoff:g} Å, {args.dtype})')
    return ExitCode.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-export``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    return run_main('les-export', lambda: _run(argv))


if __name__ == '__main__':
    sys.exit(main())
