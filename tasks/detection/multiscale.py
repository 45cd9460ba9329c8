"""Multiscale training as YOLOX's trainer does it, but deterministic from the global step.

YOLOX draws a new input size every 10 iterations (``random.randint`` over ``random_size``, in units
of 32 px, on rank 0, broadcast to the others) and resizes each batch to it with bilinear
interpolation, scaling the targets (``YoloxConfig.preprocess``). Here the size of step ``s`` is a
pure function of (run seed, ``s // interval``): the first ``interval`` steps use the base size
(as in YOLOX, whose first change comes after iteration ``interval``), every DDP rank computes the
same size without a broadcast, and a resumed run continues with exactly the sizes an
uninterrupted one would have used.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from vsynth.errors import ConfigError


class Multiscale:
    def __init__(self, base: Sequence[int], size_range: Sequence[int] | None, interval: int, seed: int) -> None:
        self.base = (int(base[0]), int(base[1]))
        self.interval = int(interval)
        self.seed = int(seed)
        self.units: tuple[int, int] | None = None
        if size_range is None:
            return
        lo, hi = (int(v) for v in size_range)
        if lo % 32 or hi % 32 or lo < 32 or hi < lo:
            raise ConfigError(f"task.multiscale.range must be [min, max] pixels, multiples of 32 with min <= max, got {list(size_range)}")
        if self.interval < 1:
            raise ConfigError(f"task.multiscale.interval must be >= 1 step, got {interval}")
        self.units = (lo // 32, hi // 32)

    @property
    def enabled(self) -> bool:
        return self.units is not None

    def size_at(self, step: int) -> tuple[int, int]:
        """(height, width) for global step ``step`` (0-based)."""
        if self.units is None or step < self.interval:
            return self.base
        k = int(np.random.default_rng([self.seed, 0x5CA1E, step // self.interval]).integers(self.units[0], self.units[1] + 1))
        aspect = self.base[1] / self.base[0]
        return 32 * k, 32 * int(k * aspect)


def resize_batch(imgs: torch.Tensor, targets: torch.Tensor, base: tuple[int, int], size: tuple[int, int]):
    """``YoloxConfig.preprocess``: resize images (bilinear) and scale [cls, cx, cy, w, h] targets."""
    if tuple(size) == tuple(base):
        return imgs, targets
    sy, sx = size[0] / base[0], size[1] / base[1]
    imgs = F.interpolate(imgs, size=tuple(size), mode="bilinear", align_corners=False)
    targets = targets.clone()
    targets[..., 1::2] = targets[..., 1::2] * sx
    targets[..., 2::2] = targets[..., 2::2] * sy
    return imgs, targets
