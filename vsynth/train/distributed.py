"""Process setup for one device or DDP (torchrun's or SLURM's processes), with the same code path."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vsynth.errors import ConfigError
from vsynth.run.cluster import launch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    device = str(device)
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but CUDA is not available here (use device=cpu or device=auto)")
    if device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"device={device}: {e}") from e


def init_distributed(device: str) -> DistInfo:
    """Join the process group when this is one of several processes (torchrun's or SLURM's tasks).

    SLURM's tasks get torchrun's variables (``RANK``, ``MASTER_ADDR``, ...) from
    :func:`vsynth.run.cluster.launch`, so everything downstream, backends included, sees one kind of
    DDP job.
    """
    job = launch()
    if job.problem:
        raise ConfigError(job.problem)
    dev = resolve_device(device, job.local_rank)
    if job.world_size > 1 and not dist.is_initialized():
        os.environ.update(job.torchrun_env())
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(job.rank, job.world_size, job.local_rank, dev)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DDP wrapper."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.module
    return model


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (identity without DDP)."""
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
