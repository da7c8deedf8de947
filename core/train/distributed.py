"""Multi-process training under ``torchrun``: process group, device, data sharding, rank 0's duties.

``torchrun --nproc_per_node N --no-python nirstream train ...`` starts one process per
device and describes it in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``PORT``.
:func:`setup` reads those, joins the group (NCCL on CUDA, gloo on the CPU) and picks the
device; a plain single process gets a context of world size 1 and the same code path.
Only rank 0 logs, writes files and shows a progress bar: the other ranks' nirstream log
messages are switched off, so a run's log reads the same however many processes ran it.

This module also decides which training items each process sees, in which order, and with
which augmentation seed (:class:`SeededShardSampler`, whose ``(index, seed)`` keys index
:class:`~nirstream.core.data.AugmentedPairs`): all of it derives from ``(seed, epoch, item
index)`` alone, never from a generator's running state, so a run resumed at an epoch boundary
draws exactly the crops and flips the uninterrupted run drew, with any number of DataLoader
workers.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from loguru import logger
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler, Sampler

from nirstream.core.device import resolve_device


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, on ``device``.

    ``owns_group`` records whether :func:`setup` created the process group (and
    :func:`teardown` must destroy it) or found one already running.
    """

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_name: str) -> DistContext:
    """Join the ``torchrun`` process group if the environment describes one; otherwise run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    if world_size == 1:
        return DistContext(rank=0, world_size=1, device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if rank != 0:
        logger.disable("nirstream")
    return DistContext(rank=rank, world_size=world_size, device=device, owns_group=owns_group)


def teardown(context: DistContext) -> None:
    """Leave the process group if :func:`setup` joined it, and switch logging back on."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()
    if not context.is_main:
        logger.enable("nirstream")


def wrap_model(module: nn.Module, context: DistContext, *, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel (gradients averaged over ranks), or as is alone.

    ``find_unused_parameters`` is for forwards that leave some parameters out (a head whose
    output no loss reads): DDP then stops waiting for their gradients, at a small cost per step.
    """
    if not context.enabled:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def derived_seed(*keys: int) -> int:
    """A well-mixed 64-bit seed from a tuple of integers, e.g. ``(seed, epoch, index)``."""
    return int(np.random.SeedSequence([k % 2**63 for k in keys]).generate_state(1, dtype=np.uint64)[0])


class SeededShardSampler(Sampler[tuple[int, int]]):
    """This rank's share of the training items for an epoch, each with its augmentation seed.

    Yields ``(index, item_seed)``: the order comes from :class:`DistributedSampler` (shuffled
    by ``seed + epoch``; with one process, a share of the whole), the seed from
    ``(seed, epoch, index)``. Call :meth:`set_epoch` before iterating each epoch.
    """

    def __init__(self, dataset: Dataset, context: DistContext, seed: int) -> None:
        self.order = DistributedSampler(
            dataset, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
        )
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order:
            yield index, derived_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return len(self.order)


def all_reduce_sum(values: torch.Tensor, context: DistContext) -> torch.Tensor:
    """The element-wise sum of ``values`` over all ranks (``values`` itself when alone)."""
    if not context.enabled:
        return values
    reduced = values.to(context.device).clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def broadcast_object(value: Any, context: DistContext) -> Any:
    """Rank 0's ``value`` on every rank (e.g. the run folder that only rank 0 chose)."""
    if not context.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0, device=context.device if context.device.type == "cuda" else None)
    return holder[0]
