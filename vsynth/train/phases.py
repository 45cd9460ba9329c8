"""Named training phases (e.g. ``frozen`` then ``unfrozen``), each with its own freeze rule.

A phase freezes modules by name prefix (``backbone``, ``model.0``...): their parameters stop
requiring gradients and their BatchNorm layers stay in eval mode (running statistics frozen too),
which is what "frozen backbone" means in the users' YOLOX recipe. Phase boundaries are global
steps, so a resumed run re-applies the freeze state of the phase it resumes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from torch import nn

from vsynth.errors import ConfigError


@dataclass(frozen=True)
class Phase:
    name: str
    start: int  # first global step
    end: int  # one past the last global step
    freeze: tuple[str, ...] = field(default_factory=tuple)


def plan_phases(phases_cfg: Sequence, total_steps: int, steps_per_unit: float) -> list[Phase]:
    """Turn config phases (lengths in units) into step ranges covering ``[0, total_steps)``."""
    if not phases_cfg:
        return [Phase("train", 0, total_steps)]
    out: list[Phase] = []
    start = 0
    for i, p in enumerate(phases_cfg):
        name = str(p.get("name", f"phase{i}"))
        length = p.get("length")
        last = i == len(phases_cfg) - 1
        if length is None:
            if not last:
                raise ConfigError(f"trainer.phases[{i}].length may be null only for the last phase ('{name}')")
            end = total_steps
        else:
            if float(length) < 0:
                raise ConfigError(f"trainer.phases[{i}].length must be >= 0, got {length}")
            end = start + int(round(float(length) * steps_per_unit))
        out.append(Phase(name, start, min(end, total_steps), tuple(str(f) for f in (p.get("freeze") or []))))
        start = min(end, total_steps)
    if out[-1].end < total_steps:
        raise ConfigError(
            f"trainer.phases cover {out[-1].end} of {total_steps} steps; make the last phase's length null "
            "or make the phase lengths add up to trainer.length"
        )
    return out


def phase_at(phases: Sequence[Phase], step: int) -> Phase:
    for p in phases:
        if p.start <= step < p.end:
            return p
    return phases[-1]


def frozen_modules(model: nn.Module, prefixes: Sequence[str]) -> list[tuple[str, nn.Module]]:
    """Modules whose qualified name equals or starts with one of ``prefixes``."""
    if not prefixes:
        return []
    named = dict(model.named_modules())
    out = []
    for pre in prefixes:
        hits = [(n, m) for n, m in named.items() if n == pre]
        if not hits:
            raise ConfigError(
                f"trainer.phases freeze prefix '{pre}' matches no module; top-level modules are "
                f"{sorted({n.split('.')[0] for n in named if n})[:20]}"
            )
        out.extend(hits)
    return out


def apply_freeze(model: nn.Module, prefixes: Sequence[str]) -> int:
    """Set ``requires_grad`` for the phase: frozen prefixes off, everything else on. Returns #frozen params."""
    for p in model.parameters():
        p.requires_grad_(True)
    n = 0
    for _, m in frozen_modules(model, prefixes):
        for p in m.parameters():
            p.requires_grad_(False)
            n += p.numel()
    return n


def set_train_mode(model: nn.Module, prefixes: Sequence[str]) -> None:
    """``model.train()`` but BatchNorm inside frozen modules stays in eval mode."""
    model.train()
    for _, m in frozen_modules(model, prefixes):
        for sub in m.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.eval()
