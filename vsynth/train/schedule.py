"""One LR schedule across all phases: linear warmup, then cosine decay to a floor.

It is a pure function of the global step, so resume needs no scheduler state beyond the step and
phases never restart it (the users' two-phase YOLOX recipe runs one cosine across both phases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    lr: float
    total_steps: int
    warmup_steps: int = 0
    warmup_factor: float = 0.001
    min_lr: float = 0.0

    def __call__(self, step: int) -> float:
        """Learning rate for global step ``step`` (0-based)."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            alpha = step / self.warmup_steps
            return self.lr * (self.warmup_factor + (1.0 - self.warmup_factor) * alpha)
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t))
