"""Process-group setup for `torchrun`, and the few collectives the trainer needs.

`torchrun --nproc_per_node=N tasks/runs/run.py ...` starts N processes with `RANK`, `WORLD_SIZE`,
`LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT` in the environment; a plain `python` launch has none
of them and runs as the single process of a world of size 1 (no process group at all).
Backend: NCCL when the trainer's device is CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from config.errors import UserInputError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: `rank` of `world_size`, on `device`."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the config; the others only train."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def choose_device(requested: str, local_rank: int, world_size: int = 1) -> torch.device:
    """`auto`: CUDA (this process's local GPU) when present, else CPU; `cpu` / `cuda` force one; `cuda:N`
    (one process only: under torchrun each process takes its local rank's GPU) that GPU."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserInputError(f"config: trainer.device is '{requested}' but no CUDA device is available; use auto or cpu")
    if requested.startswith("cuda:"):
        if world_size > 1:
            raise UserInputError(f"config: trainer.device '{requested}' names one GPU, but torchrun started {world_size} processes; use cuda or auto")
        device = torch.device(requested)
        if device.index >= torch.cuda.device_count():
            raise UserInputError(f"config: trainer.device '{requested}': this machine has {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(device)
        return device
    device = torch.device("cuda", local_rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def init_distributed(requested_device: str = "auto") -> DistContext:
    """Join the `torchrun` process group (env:// rendezvous) when launched by it; else a world of one."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = choose_device(requested_device, local_rank, world_size)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def any_rank(ctx: DistContext, flag: torch.Tensor) -> bool:
    """True when `flag` (a bool/0-1 scalar tensor) is set on any rank; one tiny all-reduce when distributed.

    Every decision that changes control flow (skip this update, stop now) goes through here, so that
    all ranks take the same branch and none waits forever in a collective the others skipped.
    """
    if ctx.is_distributed:
        flag = flag.to(device=ctx.device, dtype=torch.int32).reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def average_gradients(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over ranks (one flat all-reduce).

    For the case DDP's own hooks cannot serve (several optimizers with gradient accumulation, see
    `Trainer._turn`). A parameter without a gradient on this rank contributes zeros, so every rank
    packs the same buffer.
    """
    if not ctx.is_distributed or not params:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_to_main(ctx: DistContext, obj: Any) -> list[Any] | None:
    """Every rank's `obj` (plain Python values) collected on rank 0, in rank order; None on the others.

    Uses `gather_object` (pickle between our own processes, never read from disk).
    """
    if not ctx.is_distributed:
        return [obj]
    gathered: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered
