"""The process group under `torchrun` (gloo on CPU; nccl for CUDA tensors, gloo for CPU ones), or a single process.

Under torchrun the process group and DDP are set up even for one process (`--nproc_per_node 1`), so a
one-GPU machine runs exactly the code path of a multi-GPU one; a plain `train run` uses neither.
Across nodes (`torchrun --nnodes N`) RANK is global and LOCAL_RANK counts the processes of one node: the
device is `cuda:LOCAL_RANK`, and only global rank 0 writes (checkpoints, metrics, results).
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
    local_world_size: int = 1  # processes on this node

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // self.local_world_size)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launched


def from_env(environ, requested_device: str = "auto") -> DistContext:
    """The process's place in the job from torchrun's variables: RANK is global, LOCAL_RANK (this node's) picks the device."""
    world_size = int(environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(environ.get("RANK", "0")), int(environ.get("LOCAL_RANK", "0"))
    launched = "TORCHELASTIC_RUN_ID" in environ  # torchrun sets it; a plain process has none
    return DistContext(rank, world_size, local_rank, resolve_device(requested_device, local_rank), launched,
                       int(environ.get("LOCAL_WORLD_SIZE", world_size)))


def setup(requested_device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    import torch
    import torch.distributed as dist

    ctx = from_env(os.environ, requested_device)
    if ctx.distributed and not dist.is_initialized():
        if ctx.launched:  # torchrun's workers outlive a killed launcher (a lost node); ours die with it
            from tierclip.curate.procs import die_with_parent

            die_with_parent()
        # On CUDA the group takes nccl for GPU tensors and gloo for CPU ones (all_sum's counters, objects).
        backend = "cpu:gloo,cuda:nccl" if ctx.device.startswith("cuda") else "gloo"
        if ctx.device.startswith("cuda"):
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


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
