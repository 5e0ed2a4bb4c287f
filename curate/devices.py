"""The one device resolver: `--device` of `curate score` (clip stage), `train run` and `train eval`."""

from __future__ import annotations

from tierclip.curate.errors import UserError

# What a --device option accepts (checked when the command line is parsed: curate.fields.option(pattern=...)).
DEVICE_PATTERN = (r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N")


def resolve_device(requested: str = "auto", local_rank: int = 0) -> str:
    """`auto`: cuda when available, else cpu; `cuda`: this process's GPU (`cuda:LOCAL_RANK` under torchrun);
    `cuda:N` and `cpu` as given. Asking for CUDA on a machine without it is a user error, said before any work."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: CUDA is not available on this machine (use --device cpu or auto)")
    return f"cuda:{local_rank}" if requested == "cuda" else requested
