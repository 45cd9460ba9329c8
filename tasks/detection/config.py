"""The detection task's config schema (``task``, its ``data`` and ``model``): keys and types, checked at
composition (see ``vsynth/config/schema.py``). Values and comments live in ``conf/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from vsynth.config.schema import DataConfig, SampleGrids


@dataclass
class CocoFiles:
    coco: Optional[str] = None
    images: Optional[str] = None


def _splits(*names: str):
    return field(default_factory=lambda: {n: CocoFiles() for n in names})


@dataclass
class DetectionData(DataConfig):
    real: Dict[str, CocoFiles] = _splits("train", "val", "test")
    synthetic: Dict[str, CocoFiles] = _splits("train", "val", "test")
    generated: Dict[str, CocoFiles] = _splits("train")


@dataclass
class YoloxModel:
    name: str = "yolox"
    depth: float = 0.33
    width: float = 0.25
    depthwise: bool = False
    act: str = "silu"


@dataclass
class YoloxAugment:
    mosaic_prob: float = 1.0
    mixup_prob: float = 0.0
    hsv_prob: float = 1.0
    flip_prob: float = 0.5
    degrees: float = 10.0
    translate: float = 0.1
    shear: float = 2.0
    mosaic_scale: List[float] = field(default_factory=lambda: [0.5, 1.5])
    mixup_scale: List[float] = field(default_factory=lambda: [0.5, 1.5])


@dataclass
class Multiscale:
    range: Optional[List[int]] = None
    interval: int = 10


@dataclass
class DetectionTaskConfig:
    name: str = "detection"
    metrics: List[str] = field(default_factory=list)  # headline test metrics (the first is gated)
    _target_: str = "tasks.detection.task.DetectionTask"
    input_size: List[int] = field(default_factory=lambda: [224, 224])
    test_size: Optional[List[int]] = None
    basic_lr_per_img: Optional[float] = None
    no_aug_epochs: int = 2
    max_labels: int = 120
    augment: YoloxAugment = field(default_factory=YoloxAugment)
    multiscale: Multiscale = field(default_factory=Multiscale)
    samples: SampleGrids = field(default_factory=SampleGrids)


SCHEMAS = {"task": {"detection": DetectionTaskConfig}, "data": {"detection": DetectionData},
           "model": {"yolox": YoloxModel}}
