"""The segmentation task's config schema (``task``, its ``data`` and ``model``): keys and types, checked at
composition (see ``vsynth/config/schema.py``). Values and comments live in ``conf/``. The mmseg model
dict (``model.mmseg``) and the transform pipelines are mmseg's own structures: their contents are
checked by mmseg's registries when the model and pipelines are built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from vsynth.config.schema import DataConfig, DemoConfig


@dataclass
class SegDemo(DemoConfig):
    manifest: str = "manifest.csv"


@dataclass
class SegReal:
    root: Optional[str] = None
    img_dir: str = "img_dir"
    ann_dir: str = "ann_dir"
    mask_suffix: str = ".png"
    classes: str = "classes.json"
    splits: Dict[str, Optional[str]] = field(default_factory=lambda: {"train": "train", "val": "val", "test": "test"})


@dataclass
class SegGenerated:
    manifest: Optional[str] = None
    classes: Optional[str] = None
    conditions: Optional[List[str]] = None
    generators: Optional[List[str]] = None


@dataclass
class SegData(DataConfig):
    demo: SegDemo = field(default_factory=SegDemo)
    real: SegReal = field(default_factory=SegReal)
    generated: SegGenerated = field(default_factory=SegGenerated)
    check_labels: Any = "all"  # all | none | N per source


@dataclass
class MmsegModel:
    name: str = "model"
    depth: int = 50
    width: int = 64
    head_channels: int = 512
    aux_channels: Optional[int] = 256
    norm: str = "auto"
    mmseg: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Ohem:
    thresh: Optional[float] = 0.7
    min_kept: int = 100000


@dataclass
class SegLoss:
    class_weight: Any = None  # a list per class, or {class name: weight}
    mining: str = "none"
    ohem: Ohem = field(default_factory=Ohem)
    top_k: float = 1.0
    aux_weight: float = 0.4
    aux_mining: bool = False
    keep_model_loss: bool = False


@dataclass
class Slide:
    crop_size: Optional[List[int]] = None
    stride: Optional[List[int]] = None


@dataclass
class SegStats:
    enabled: bool = True
    per_source: Optional[int] = 32
    seed: int = 0


@dataclass
class ConsistencyBootstrap:
    samples: int = 1000
    seed: int = 0
    level: float = 0.95


@dataclass
class SegConsistency:
    bootstrap: ConsistencyBootstrap = field(default_factory=ConsistencyBootstrap)
    pictures: int = 4


@dataclass
class SegSamples:
    per_batch: int = 16
    predictions: int = 6


@dataclass
class SegmentationTaskConfig:
    name: str = "segmentation"
    metrics: List[str] = field(default_factory=list)  # headline test metrics (the first is gated)
    _target_: str = "tasks.segmentation.task.SegmentationTask"
    crop_size: List[int] = field(default_factory=lambda: [128, 128])
    scale: List[int] = field(default_factory=lambda: [320, 240])
    train_pipeline: List[Dict[str, Any]] = field(default_factory=list)
    test_pipeline: List[Dict[str, Any]] = field(default_factory=list)
    loss: SegLoss = field(default_factory=SegLoss)
    inference: str = "whole"
    slide: Slide = field(default_factory=Slide)
    stats: SegStats = field(default_factory=SegStats)
    consistency: SegConsistency = field(default_factory=SegConsistency)
    samples: SegSamples = field(default_factory=SegSamples)


SCHEMAS = {"task": {"segmentation": SegmentationTaskConfig}, "data": {"segmentation": SegData},
           "model": {"mmseg": MmsegModel}}
