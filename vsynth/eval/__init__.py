"""Evaluators shared by every task: keypoints (OKS-mAP, PCK), detection (COCO AP/AR), segmentation (IoU).

Importing this package is cheap (no torch, no mmseg, not even numpy): the public names below are
loaded on first use.

* :class:`KeypointEvaluator` (``vsynth.eval.keypoints``)
* :class:`DetectionEvaluator` (``vsynth.eval.detection``)
* :class:`SegmentationEvaluator` (``vsynth.eval.segmentation``)
* :func:`paired_bootstrap` (``vsynth.eval.bootstrap``)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "KeypointEvaluator": "vsynth.eval.keypoints",
    "DetectionEvaluator": "vsynth.eval.detection",
    "SegmentationEvaluator": "vsynth.eval.segmentation",
    "paired_bootstrap": "vsynth.eval.bootstrap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vsynth.eval' has no attribute {name!r}")
