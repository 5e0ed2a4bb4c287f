"""The process group under `torchrun` (gloo on CPU; nccl for CUDA tensors, gloo for CPU ones), or a single process.

Under torchrun the process group and DDP are set up even for one process (`--nproc_per_node 1`), so a
one-GPU machine runs exactly the code path of a multi-GPU one; a plain `train run` uses neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tierclip.curate.devices import resolve_device


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    launched: bool = False  # started by torchrun: process group and DDP even for one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launched


def setup(requested_device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    launched = "TORCHELASTIC_RUN_ID" in os.environ  # torchrun sets it; a plain process has none
    device = resolve_device(requested_device, local_rank)  # the one resolver (curate.devices)
    if (world_size > 1 or launched) and not dist.is_initialized():
        # On CUDA the group takes nccl for GPU tensors and gloo for CPU ones (all_sum's counters, objects).
        backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world_size, local_rank, device, launched)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_sum(ctx: DistContext, value: float) -> float:
    if not ctx.distributed:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item())


def gather_objects(ctx: DistContext, obj) -> list:
    """Every rank's `obj`, on every rank (a list of world_size items)."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def teardown(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
