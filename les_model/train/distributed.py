"""Data-parallel training under ``torchrun``: the process group, and what the ranks exchange.

Scheme (exact, no DDP wrapper): every rank reads the whole data set and builds the same model from the same seed;
each global batch (``batch_size`` structures, the same shuffled order on every rank) is cut into ``world_size``
contiguous shards; each rank's loss is the sum of its squared errors divided by the *global* element count of each
term, and the gradients are summed over the ranks by one ``all_reduce``. The summed gradient is then the gradient
of the single-process loss on the whole batch (up to rounding), for any shard sizes, so the optimiser, the gradient
clipping, the EMA and every decision (best model, early stopping, NaN) are identical on all ranks. Forces are
derivatives of the energy (double backward), which needs no care here: only the final parameter gradients are
exchanged.

Evaluation (validation, end-of-epoch training errors, the E0 refit) splits whole batches over the ranks and gathers
the additive error sums, so every rank sees the same numbers. Stops (walltime, SIGTERM) are decided by an
``all_reduce`` of flags, so no rank waits on a collective the others have left.

Outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) :class:`Communicator` is a single-process no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

__all__ = ['Communicator', 'ShardFailure', 'global_batch_loss', 'init_from_environment', 'merge_sums']


class Communicator:
    """Rank, world size and the collectives training needs (no-ops for one process).

    :param rank: this process's rank (0 ... world_size - 1).
    :param world_size: number of processes.
    :param device: device of the tensors exchanged (CUDA for NCCL, CPU for gloo).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device | str = 'cpu'):
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    @property
    def part(self) -> tuple[int, int]:
        """``(rank, world_size)``, the ``shard`` / ``every`` argument of :meth:`StructureDataset.batches`."""
        return self.rank, self.world_size

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) ``tensor`` in place and return it."""
        if self.distributed:
            import torch.distributed as dist

            moved = tensor.to(self.device)
            dist.all_reduce(moved, op=dist.ReduceOp.SUM)
            if moved is not tensor:
                tensor.copy_(moved)
        return tensor

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, whether it is set on any rank."""
        if not self.distributed:
            return [bool(f) for f in flags]
        values = self.sum_(torch.tensor([float(f) for f in flags], dtype=torch.float64, device=self.device))
        return [bool(v > 0) for v in values.tolist()]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter], extra: torch.Tensor) -> torch.Tensor:
        """Sum the parameter gradients (missing ones count as zero) and ``extra`` (1-D) over the ranks.

        One flat ``all_reduce``; the summed gradients are written back into ``.grad``.

        :return: the summed ``extra``.
        """
        if not self.distributed:
            return extra
        params = [p for p in parameters if p.requires_grad]
        dtype = params[0].dtype if params else extra.dtype
        parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype) for p in params]
        # which parameters have a gradient on some rank: the others keep None, as in one process (AdamW skips them)
        present = torch.tensor([float(p.grad is not None) for p in params], dtype=dtype)
        flat = torch.cat([x.to(device=self.device, dtype=dtype) for x in [*parts, present, extra.reshape(-1)]])
        self.sum_(flat)
        offset = sum(p.numel() for p in params)
        present = flat[offset : offset + len(params)].tolist()
        offset = 0
        for p, has_grad in zip(params, present, strict=True):
            chunk = flat[offset : offset + p.numel()].view_as(p).to(p.device)
            offset += p.numel()
            if not has_grad:
                continue
            if p.grad is None:
                p.grad = chunk.clone()
            else:
                p.grad.copy_(chunk)
        return flat[offset + len(params) :].to(extra.dtype)


class ShardFailure(RuntimeError):
    """The forward pass of a rank failed (non-finite charges); raised on every rank at once."""


def global_batch_loss(
    comm: Communicator,
    sums: Mapping[str, tuple[torch.Tensor, int]],
    weights: Mapping[str, float],
    failure: str,
    like: torch.Tensor,
) -> torch.Tensor:
    """This rank's part of the loss of the global batch: ``sum_k w_k S_k / N_k``, ``N_k`` summed over the ranks.

    Summed over the ranks (with the gradients) it is the mean-squared-error loss of the whole batch
    (:func:`~les_model.train.loss.weighted_loss`). A collective: every rank must call it at every step.

    :param sums: :func:`~les_model.train.loss.squared_error_sums` of this rank's shard (empty: empty shard or failure).
    :param weights: label key -> weight.
    :param failure: why this rank's forward pass failed ('' when it did not).
    :param like: a scalar with the dtype and device of the loss.
    :raises ShardFailure: on every rank, when any rank failed.
    :raises ValueError: when no rank has a label with a positive weight.
    """
    keys = [key for key, weight in weights.items() if weight > 0]
    counts = [float(sums[k][1]) if k in sums else 0.0 for k in keys] + [float(bool(failure))]
    counts = comm.sum_(torch.tensor(counts, dtype=torch.float64)).tolist()
    if counts[-1] > 0:
        raise ShardFailure(failure or 'the forward pass failed on another rank')
    if not any(counts[:-1]):
        raise ValueError(f'no label with a positive weight is present; weights {dict(weights)}')
    local = torch.zeros_like(like)
    for key, total in zip(keys, counts, strict=False):
        if key in sums and total > 0:
            local = local + weights[key] * sums[key][0] / total
    return local


def merge_sums(states: Iterable[Mapping[str, Sequence[float]]]) -> dict[str, list[float]]:
    """Element-wise sum of additive accumulator states (``name -> [sums...]``), in the order given."""
    out: dict[str, list[float]] = {}
    for state in states:
        for key, values in state.items():
            if key in out:
                out[key] = [a + b for a, b in zip(out[key], values, strict=True)]
            else:
                out[key] = list(values)
    return out


def init_from_environment(device: torch.device) -> tuple[Communicator, torch.device]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (gloo on CPU, NCCL on CUDA).

    :param device: the device asked for; ``cuda`` becomes ``cuda:<LOCAL_RANK>``.
    :return: the communicator and the device this rank trains on.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return Communicator(), device
    import torch.distributed as dist

    rank, local_rank = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
    if device.type == 'cuda':
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return Communicator(rank, world_size, device), device
