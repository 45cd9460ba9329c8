"""Mixed precision: ``fp16`` (with grad scaling), ``bf16``, or off; ``auto`` = fp16 on CUDA only.

fp16 autocast on CPU is slow and poorly supported, so asking for it there falls back to off with a
warning; bf16 works on both.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from vsynth.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_amp(amp: str | bool | None, device: torch.device) -> str:
    value = str(amp).lower() if amp is not None else "off"
    value = {"false": "off", "none": "off", "true": "auto"}.get(value, value)
    if value not in {"auto", "fp16", "bf16", "off"}:
        raise ConfigError(f"trainer.amp must be auto, fp16, bf16 or off, got '{amp}'")
    if value == "auto":
        return "fp16" if device.type == "cuda" else "off"
    if value == "fp16" and device.type != "cuda":
        log.warning("trainer.amp=fp16 needs CUDA; running in fp32 on %s", device)
        return "off"
    return value


def autocast(amp: str, device: torch.device):
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16"))
