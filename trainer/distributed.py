"""Data-parallel training under torchrun (DDP: NCCL when every rank has a GPU, else gloo); a no-op in
a plain process.

    torchrun --nproc_per_node=2 -m cli train --corpus kjv --run-dir runs/kjv-ddp --max-minutes 30

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for every process. Each
process then:
- reads its own contiguous shard of the training text (`batch_size` streams per process, so
  the global batch is batch_size * world_size streams, the same data one process would read with
  that many streams);
- runs the model through DistributedDataParallel, which averages the gradients in backward, so
  every rank takes the same optimizer step and the weights stay identical;
- agrees with the others on when to stop (time budget, Ctrl-C), so no rank waits forever in a
  collective its partners have left.
Only rank 0 evaluates, samples, logs and writes files; the others wait at a barrier until its
checkpoint is complete.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from models.errors import RnnbotError
from trainer.data import StreamBatcher

BACKENDS = {"cuda": "nccl", "cpu": "gloo"}  # GPU ranks talk over NCCL; CPU ranks over gloo


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun with CUDA, each rank takes its own GPU: cuda:LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise RnnbotError(f"rank with LOCAL_RANK={local} has no GPU of its own: this machine has "
                              f"{torch.cuda.device_count()}; start fewer processes per node or use --device cpu")
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


class Single:
    """One process: the whole text, the bare model, nothing to agree on."""

    rank, world_size, is_main = 0, 1, True

    def batcher(self, ids: torch.Tensor, batch_size: int, seq_len: int) -> StreamBatcher:
        return StreamBatcher(ids, batch_size, seq_len)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def any(self, flag: bool) -> bool:
        return flag

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class DataParallel(Single):
    """One of world_size processes in a gloo process group."""

    def __init__(self, rank: int, world_size: int, owns_group: bool, device: torch.device | None = None):
        self.rank, self.world_size, self.owns_group = rank, world_size, owns_group
        self.device = device or torch.device("cpu")
        self.is_main = rank == 0

    def batcher(self, ids: torch.Tensor, batch_size: int, seq_len: int) -> StreamBatcher:
        """This rank's streams: an equal contiguous shard of the text per rank (+1 char for the targets)."""
        shard = (len(ids) - 1) // self.world_size
        try:
            return StreamBatcher(ids[self.rank * shard : (self.rank + 1) * shard + 1], batch_size, seq_len)
        except RnnbotError as exc:
            raise RnnbotError(f"{exc} (each of the {self.world_size} processes reads 1/{self.world_size} "
                              "of the text)") from None

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        # DDP broadcasts rank 0's weights now and averages gradients in every backward.
        if self.device.type == "cuda":
            return DistributedDataParallel(model, device_ids=[self.device.index])
        return DistributedDataParallel(model)

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any rank (all ranks must call this together)."""
        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)  # NCCL: on the GPU
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def from_env(seed: int, device: torch.device | None = None) -> Single:
    """DataParallel when launched by torchrun (WORLD_SIZE > 1), else Single. `device`: this rank's
    (rank_device); NCCL when it is a GPU, gloo otherwise."""
    device = device or torch.device("cpu")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Single()
    owns_group = not dist.is_initialized()
    if owns_group:
        # env:// rendezvous: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
        dist.init_process_group(BACKENDS[device.type])
    rank = dist.get_rank()
    if rank != 0:
        logging.getLogger("trainer").setLevel(logging.WARNING)  # one log, from rank 0
        torch.manual_seed(seed + rank)  # different dropout masks per rank; weights come from rank 0
    return DataParallel(rank, dist.get_world_size(), owns_group, device)
