"""Gather evaluator state across DDP ranks, without importing torch when it is not in use.

An evaluator is DDP-aware only if ``torch.distributed`` is already initialised; torch is never
imported just to find that out (``import torch`` costs seconds, and the CLI never needs it).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

import numpy as np

_local_only = [False]


@contextlib.contextmanager
def local_only() -> Iterator[None]:
    """Evaluate in this process alone, even under DDP.

    The training loop scores the whole val/test split on rank 0 while the other ranks wait; a
    gather inside ``compute()`` would then wait for ranks that never call it.
    """
    prev = _local_only[0]
    _local_only[0] = True
    try:
        yield
    finally:
        _local_only[0] = prev


def _initialised_dist() -> Any | None:
    """``torch.distributed`` if a process group is initialised (and not in :func:`local_only`), else None."""
    if _local_only[0]:
        return None
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def world_size() -> int:
    """Number of DDP ranks (1 without an initialised process group)."""
    dist = _initialised_dist()
    return 1 if dist is None else int(dist.get_world_size())


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` without DDP)."""
    dist = _initialised_dist()
    if dist is None or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """Element-wise sum of an int64/float64 array over ranks (unchanged without DDP)."""
    dist = _initialised_dist()
    if dist is None or dist.get_world_size() == 1:
        return array
    import torch

    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()
