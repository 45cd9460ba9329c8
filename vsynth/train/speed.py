"""The loop's speed knobs (``trainer.pin_memory``, ``persistent_workers``, ``cudnn_benchmark``,
``channels_last``, ``compile``): what a GPU user expects, each resolved once from the config.

``auto`` means "on where it is safe": pinned memory, cuDNN autotuning and channels-last only change
how work is laid out on a CUDA device, so they are on with CUDA and do nothing on a CPU; persistent
workers are on with CUDA (on a CPU, where every run so far was measured, they stay off unless set);
``torch.compile`` is off unless asked for, because its first steps compile for minutes and some
backends' losses break its graphs. None of them changes what a run computes beyond floating-point
rounding, and none of them changes how a run resumes: data order and augmentation stay functions of
(seed, epoch, batch) (see :mod:`vsynth.data.mixed_dataset`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from vsynth.errors import ConfigError

log = logging.getLogger("vsynth.train")

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def switch(value: Any, key: str, *, auto: bool) -> bool:
    """A true/false/auto config value as a bool (``auto`` gives ``auto``)."""
    v = str(value).lower() if value is not None else "false"
    if v == "auto":
        return auto
    if v in ("true", "false"):
        return v == "true"
    raise ConfigError(f"{key} must be auto, true or false, got '{value}'")


@dataclass(frozen=True)
class Speed:
    """The resolved knobs of one run (see ``conf/trainer/default.yaml``)."""

    pin_memory: bool
    persistent_workers: bool
    cudnn_benchmark: bool
    channels_last: bool
    compile_mode: str | None  # None: no torch.compile

    @classmethod
    def from_config(cls, tc, device: torch.device, fixed_shapes: bool) -> "Speed":
        cuda = device.type == "cuda"
        pin = switch(tc.get("pin_memory", "auto"), "trainer.pin_memory", auto=cuda)
        if pin and not cuda:
            log.info("trainer.pin_memory=true has no effect on %s (page-locked memory is for copies to a GPU)", device)
            pin = False
        workers = int(tc.workers)
        persistent = switch(tc.get("persistent_workers", "auto"), "trainer.persistent_workers", auto=cuda)
        if persistent and workers == 0:
            if str(tc.get("persistent_workers")).lower() == "true":
                log.info("trainer.persistent_workers=true has no effect with trainer.workers=0")
            persistent = False
        bench = switch(tc.get("cudnn_benchmark", "auto"), "trainer.cudnn_benchmark", auto=cuda and fixed_shapes)
        if bench and not cuda:
            log.info("trainer.cudnn_benchmark=true has no effect on %s", device)
            bench = False
        cl = switch(tc.get("channels_last", "auto"), "trainer.channels_last", auto=cuda)
        return cls(pin, persistent, bench, cl, compile_mode(tc.get("compile", False)))

    def describe(self) -> str:
        return (f"pin_memory={self.pin_memory} persistent_workers={self.persistent_workers} "
                f"cudnn_benchmark={self.cudnn_benchmark} channels_last={self.channels_last} "
                f"compile={self.compile_mode or False}")


def compile_mode(value: Any) -> str | None:
    """``trainer.compile``: false, true (torch's default mode) or a mode name."""
    v = str(value).lower() if value is not None else "false"
    if v == "false":
        return None
    if v == "true":
        return "default"
    if v in COMPILE_MODES:
        return v
    raise ConfigError(f"trainer.compile must be false, true or one of {list(COMPILE_MODES)}, got '{value}'")


def to_channels_last(model: nn.Module) -> nn.Module:
    """4-D weights in NHWC layout; convolutions then produce NHWC activations from any input layout."""
    return model.to(memory_format=torch.channels_last)


def compiled(model: nn.Module, mode: str | None) -> nn.Module:
    """``model`` itself, or a ``torch.compile`` wrapper of it (which shares its parameters and buffers)."""
    if mode is None:
        return model
    log.info("trainer.compile: torch.compile(mode=%s) of the training forward; the first steps compile", mode)
    return torch.compile(model, mode=mode)


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """cuDNN picks the fastest algorithm per input shape (worth it only when shapes repeat)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
