"""Optimizers with the usual two parameter groups: weights decay, norms and biases don't.

All parameters are registered from the start, frozen ones included: a frozen parameter has no
gradient and is skipped by the optimizer, and unfreezing needs no new optimizer, so the state and
the schedule carry over phases unchanged (as YOLOX does).
"""

from __future__ import annotations

import torch
from torch import nn

from vsynth.errors import ConfigError

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _NORMS) or pname.endswith("bias") or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    name = str(cfg.name).lower()
    groups = param_groups(model, float(cfg.weight_decay))
    lr = float(cfg.lr)
    if lr <= 0:
        raise ConfigError(f"trainer.optimizer.lr must be > 0, got {lr}")
    # fused: one kernel for the whole update; with fp16 the grad scaler then skips an overflowed step on the
    # device instead of reading the overflow flag on the host every step. None keeps torch's default.
    fused = True if cfg.get("fused", False) else None
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(cfg.momentum), nesterov=bool(cfg.nesterov) and cfg.momentum > 0,
                               fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(float(cfg.momentum), float(cfg.beta2)), fused=fused)
    raise ConfigError(f"trainer.optimizer.name must be sgd or adamw, got '{cfg.name}'")
