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


def require_metatomic():
    """Import the export module, or fail with a message naming the missing extra.

    :raises CliFailure: if ``metatomic-torch`` is not installed.
    """
    try:
        from les_model import metatomic_model
    except ImportError as exc:
        raise CliFailure(
            ExitCode.UNEXPECTED, f'metatomic-torch is not installed ({exc}); pip install "aiida-les[export]"'
        ) from exc
    return metatomic_model


def export_files(model_files, output, dtype: str = 'float64', total_charge_input: bool = False) -> str:
    """Write the model files (several = a committee) as one metatomic model ``output``; return a summary line.

    :raises CliFailure: if metatomic is missing or a model cannot be read or exported.
    """
    import torch

    from les_model.io import IncompatibleModelError, load_model

    export_metatomic = require_metatomic().export_metatomic
    torch_dtype = getattr(torch, dtype)
    try:
        models = [load_model(path, map_location='cpu', dtype=torch_dtype) for path in model_files]
    except IncompatibleModelError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    try:
        path = export_metatomic(models, output, dtype=torch_dtype, total_charge_input=total_charge_input)
    except (ValueError, NotImplementedError) as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    return f'wrote {path} ({len(models)} model(s), cutoff {models[0].cutoff:g} Å, {dtype})'


def _run(argv) -> ExitCode:
    args = _parser().parse_args(argv)
    check_files(*args.models)
    summary = export_files(args.models, args.output, args.dtype, args.total_charge_input)
    print(f'les-export: {summary}')
    return ExitCode.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-export``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    return run_main('les-export', lambda: _run(argv))


if __name__ == '__main__':
    sys.exit(main())
