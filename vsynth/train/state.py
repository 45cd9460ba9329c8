"""The training state: exactly what ``last.pt`` holds, as one typed object.

A run killed at any step and continued from ``last.pt`` must end with the same weights as one that
never stopped. That works because everything that defines the run's future is here (weights, EMA,
optimizer, grad scaler, the global step, from which epoch, position in the epoch, phase and LR all
follow, the best evaluation so far, the realised composition tally, the RNG states) and everything
else (data order, augmentation, phase, LR) is a function of it and of the config.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from vsynth.train import checkpoint as ckpt_io
from vsynth.train.distributed import unwrap
from vsynth.train.ema import ModelEMA


@dataclass
class Best:
    """The best validation so far: the metric choosing ``best.pt``, its value and step, and every
    ``val/*`` number of that evaluation (what ``metrics.json`` reports for the best checkpoint)."""

    metric: str
    value: float
    step: int
    val: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "step": self.step, "val": dict(self.val)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Best | None":
        if not d:
            return None
        return cls(str(d["metric"]), float(d["value"]), int(d["step"]), dict(d.get("val") or {}))


@dataclass
class TrainState:
    """Model, EMA, optimizer and scaler plus the loop's counters; :meth:`payload` is a checkpoint."""

    model: nn.Module  # the bare model (DDP wraps it outside the state)
    optimizer: torch.optim.Optimizer
    scaler: Any  # torch.amp.GradScaler (a no-op one without fp16)
    ema: ModelEMA | None
    step: int = 0
    phase: str = ""
    best: Best | None = None
    composition: Counter = field(default_factory=Counter)  # samples per source
    batches: dict[str, int] = field(default_factory=dict)  # batches per composition label

    world_size: int = 1  # processes of the DDP job (the global batch is batch_size x world_size)

    def payload(self, task, config, *, full: bool = True) -> dict[str, Any]:
        """The checkpoint dict: plain tensors and containers only (the config as YAML text).

        ``full=False`` (``best.pt``, phase and periodic snapshots) leaves out the optimizer, scaler and
        RNG states: those files are for evaluation and ``init``, not for resuming.
        """
        p: dict[str, Any] = {
            "task": task.name,
            "meta": task.checkpoint_meta(),
            "model": _standard_layout(unwrap(self.model).state_dict()),
            "ema": ({**self.ema.state_dict(), "module": _standard_layout(self.ema.module.state_dict())}
                    if self.ema is not None else None),
            "step": self.step,
            "phase": self.phase,
            "best": self.best.as_dict() if self.best is not None else None,
            "composition": dict(self.composition),
            "batches": dict(self.batches),
            "config": OmegaConf.to_yaml(config, resolve=False),
            "world_size": self.world_size,
        }
        if full:
            p["optimizer"] = self.optimizer.state_dict()
            p["scaler"] = self.scaler.state_dict()
            p["rng"] = ckpt_io.rng_state()
        return p

    def restore(self, ck: dict[str, Any]) -> None:
        """Continue from a ``last.pt`` payload (weights, optimizer, counters and RNG states)."""
        unwrap(self.model).load_state_dict(ck["model"])
        if self.ema is not None and ck.get("ema"):
            self.ema.load_state_dict(ck["ema"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scaler.load_state_dict(ck["scaler"])
        self.step, self.phase = int(ck["step"]), ck["phase"]
        self.best = Best.from_dict(ck["best"])
        self.composition = Counter(ck["composition"])
        self.batches = dict(ck["batches"])
        ckpt_io.set_rng_state(ck["rng"])

    def eval_model(self) -> nn.Module:
        """The weights evaluation uses (and ``best.pt`` is chosen by): the EMA if kept, else the model."""
        m = self.ema.module if self.ema is not None else unwrap(self.model)
        m.eval()
        return m


def _standard_layout(sd: dict[str, Any]) -> dict[str, Any]:
    """Weights as NCHW-contiguous tensors, however they were trained (``trainer.channels_last``): a
    checkpoint looks the same from every device, and tools that ``view()`` weights can read it."""
    return {k: v.contiguous() if torch.is_tensor(v) else v for k, v in sd.items()}
