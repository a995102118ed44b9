"""``les-train config.yaml [--resume] [--device ...] [--dtype ...]``: train an LES model or committee.

Outputs in the current directory (see ``les_model/cli/README.md``): model file(s), ``metrics.json``, ``train.log``,
``checkpoint.pt``, ``learning_curve.png``, and with ``export_file`` the metatomic model of the whole committee (float64,
as ``les-export`` writes it). One line per epoch goes to stdout and ``train.log``; the last stdout line is
``LES-TRAIN FINISHED status=<status>``. ``max_walltime``, SIGTERM and SIGINT stop the run after the current step
with exit status 11, a checkpoint and the best model so far (``<stem>.partial.pt``).

Under ``torchrun --nproc_per_node N les-train ...`` the run is data-parallel (gloo on CPU, NCCL on CUDA, one GPU per
process): ``batch_size`` stays the global batch, rank 0 alone writes the files and prints
(:mod:`les_model.train.distributed`).
"""

from __future__ import annotations

import sys
import time

from les_model.cli._common import CliFailure, base_parser, check_files, read_config, run_main
from les_model.cli.exit_codes import ExitCode

__all__ = ['main']


def _run(argv) -> ExitCode:
    start = time.monotonic()
    parser = base_parser('les-train', 'Train a Latent Ewald Summation potential (or a committee).', 'train')
    parser.add_argument('--resume', action='store_true', help='continue from checkpoint.pt in the current directory')
    args = parser.parse_args(argv)
    config = read_config(args.config, 'train', args)
    check_files(config.train_file, config.valid_file, config.init_model)

    # heavy imports only after validation, so invalid configs fail fast
    from les_model.io import IncompatibleModelError, read_model_file

    if config.export_file:
        from les_model.cli.export import require_metatomic

        require_metatomic()  # fail before training, not after it
    if config.init_model:
        # A model file of another format version is refused before any data is read.
        try:
            read_model_file(config.init_model)
        except IncompatibleModelError as exc:
            raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    from les_model.data.labels import LabelError
    from les_model.train.committee import train_committee
    from les_model.train.distributed import init_from_environment
    from les_model.train.log import format_errors
    from les_model.train.stop import stop_on_signals
    from les_model.train.trainer import NonFiniteLossError, TrainingStopped, resolve_device, resolve_dtype

    try:
        device = resolve_device(config.device)
    except ValueError as exc:
        raise CliFailure(ExitCode.DEVICE_UNAVAILABLE, str(exc)) from exc
    comm, device = init_from_environment(device)
    try:
        with stop_on_signals() as stop:
            metrics = train_committee(
                config,
                '.',
                resume=args.resume,
                device=device,
                dtype=resolve_dtype(config.dtype),
                start_time=start,
                stop=stop,
                comm=comm,
            )
    except NonFiniteLossError as exc:
        raise CliFailure(ExitCode.NAN_LOSS, f'{exc}; lower the learning rate') from exc
    except TrainingStopped as exc:
        raise CliFailure(ExitCode.OUT_OF_WALLTIME, f'{exc}; continue with `les-train {args.config} --resume`') from exc
    except IncompatibleModelError as exc:
        raise CliFailure(ExitCode.INCOMPATIBLE_MODEL, str(exc)) from exc
    except LabelError as exc:
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, str(exc)) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise CliFailure(ExitCode.INPUT_FILE_ERROR, f'{type(exc).__name__}: {exc}') from exc
    if not comm.is_main:
        return ExitCode.SUCCESS
    final = metrics['final']
    if final.get('valid'):
        print(f'final validation errors (RMSE, best model): {format_errors(final["valid"])}')
        print(f'final training errors (RMSE, best model): {format_errors(final.get("train", {}))}')
    else:
        print(
            f'final training errors (RMSE, best model): {format_errors(final.get("train", {}))}; '
            f'no validation set, so these do not measure how well the model generalises'
        )
    if config.export_file:
        from les_model.cli.export import export_files

        print(f'metatomic export: {export_files(metrics["model_files"], config.export_file)}')
    print(f'LES-TRAIN FINISHED status={metrics["status"]}')
    return ExitCode.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``les-train``; returns the exit status (see :class:`~les_model.cli.exit_codes.ExitCode`)."""
    try:
        return run_main('les-train', lambda: _run(argv))
    finally:
        dist = sys.modules.get('torch.distributed')  # not imported (fast failures) -> nothing to close
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == '__main__':
    sys.exit(main())
