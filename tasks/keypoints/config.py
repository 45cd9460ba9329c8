"""The keypoints task's config schema (``task``, its ``data`` and ``model``): keys and types, checked at
composition (see ``vsynth/config/schema.py``). Values and comments live in ``conf/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from vsynth.config.schema import DataConfig, DemoConfig, SampleGrids


@dataclass
class KeypointsDemo(DemoConfig):
    init: Optional[str] = None


@dataclass
class RealKeypoints:
    yaml: Optional[str] = None
    root: Optional[str] = None


@dataclass
class SyntheticKeypoints:
    coco: Optional[str] = None
    images: Optional[str] = None
    val_coco: Optional[str] = None
    test_coco: Optional[str] = None
    val_images: Optional[str] = None
    test_images: Optional[str] = None
    holdout: float = 0.2
    keypoint_map: Optional[List[int]] = None


@dataclass
class KeypointSchema:
    class_name: Optional[str] = None
    names: Optional[List[str]] = None
    flip_idx: Optional[List[int]] = None
    oks_sigmas: Optional[List[float]] = None


@dataclass
class KeypointsData(DataConfig):
    demo: KeypointsDemo = field(default_factory=KeypointsDemo)
    real: RealKeypoints = field(default_factory=RealKeypoints)
    synthetic: SyntheticKeypoints = field(default_factory=SyntheticKeypoints)
    keypoints: KeypointSchema = field(default_factory=KeypointSchema)


@dataclass
class UltralyticsModel:
    name: str = "model"
    cfg: str = "yolo11n-pose.yaml"


@dataclass
class Augment:
    mosaic: float = 1.0
    fliplr: float = 0.5
    flipud: float = 0.0
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    mixup: float = 0.0


@dataclass
class PoseLoss:
    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5
    pose: float = 12.0
    kobj: float = 1.0


@dataclass
class KeypointEvaluatorConfig:
    protocol: str = "coco"
    pck_alpha: float = 0.05
    area_factor: float = 0.53


@dataclass
class KeypointsTaskConfig:
    name: str = "keypoints"
    metrics: List[str] = field(default_factory=list)  # headline test metrics (the first is gated)
    _target_: str = "tasks.keypoints.task.KeypointsTask"
    imgsz: int = 256
    close_mosaic: int = 1
    allow_symmetric_flip: bool = False
    augment: Augment = field(default_factory=Augment)
    loss: PoseLoss = field(default_factory=PoseLoss)
    evaluator: KeypointEvaluatorConfig = field(default_factory=KeypointEvaluatorConfig)
    samples: SampleGrids = field(default_factory=SampleGrids)


SCHEMAS = {"task": {"keypoints": KeypointsTaskConfig}, "data": {"keypoints": KeypointsData},
           "model": {"ultralytics": UltralyticsModel}}
