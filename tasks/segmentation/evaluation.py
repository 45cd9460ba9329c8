"""Scoring one split: mmseg label maps into vsynth's IoU evaluator, and the predicted masks.

The evaluation loop is vsynth's (:mod:`vsynth.train.evaluation`); this is the glue it feeds. The
predicted label maps are written as single-channel PNGs (class indices) named like their images,
with ``gt_<split>.json`` naming each one's ground-truth label file, the classes and the ignore
index: ``python -m vsynth.eval segmentation --gt-dir ... --pred-dir predictions_<split>`` (or
mmseg's ``IoUMetric``) reproduces ``metrics.json``, and the kill switch's paired bootstrap pairs
two runs' masks image by image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vsynth.errors import ConfigError
from vsynth.task import SplitEvaluator


def flatten_metrics(res: Mapping[str, Any]) -> dict[str, Any]:
    """``{"iou": {cls: v}}`` -> ``{"iou/cls": v}``; scalars kept (miou, macc, aacc, num_images)."""
    out: dict[str, Any] = {}
    for k, v in res.items():
        if isinstance(v, Mapping):
            for name, x in v.items():
                out[f"{k}/{name}"] = float(x)
        else:
            out[k] = v
    return out


class SegmentationSplitEvaluator(SplitEvaluator):
    """mIoU, mAcc, aAcc and per-class IoU/accuracy of one split (numbers identical to mmseg's IoUMetric)."""

    def __init__(self, items: Sequence[Any], classes) -> None:
        from vsynth.eval.segmentation import SegmentationEvaluator

        self.items, self.classes = items, classes
        self.evaluator = SegmentationEvaluator(classes.num, ignore_index=classes.ignore_index, class_names=classes.names)
        self.predictions: dict[int, np.ndarray] = {}

    def process(self, indices: Sequence[int], batch: Any, outputs: list[np.ndarray]) -> None:
        from vsynth.data.formats.seg_folders import read_mask

        c = self.classes
        for i, pred in zip(indices, outputs):
            item = self.items[i]
            gt = read_mask(item.label, c.num, c.ignore_index)
            if pred.shape != gt.shape:  # a test pipeline that resizes: mmseg predicts at ori_shape
                raise ConfigError(f"task.test_pipeline: prediction {pred.shape} differs from the label {item.label} {gt.shape}")
            self.evaluator.add_map(pred, gt, source=str(item.image))
            self.predictions[int(i)] = pred.astype(np.uint8)

    def compute(self) -> dict[str, Any]:
        return flatten_metrics(self.evaluator.compute())

    def write(self, folder: Path, split: str) -> list[Path]:
        """``predictions_<split>/<image stem>.png`` and ``gt_<split>.json`` (label file per prediction)."""
        import cv2

        from vsynth.run.atomic import atomic_write, write_json

        c = self.classes
        pred_dir = Path(folder) / f"predictions_{split}"
        pred_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for i in sorted(self.predictions):
            item = self.items[i]
            out = pred_dir / f"{Path(item.image).stem}.png"
            ok, png = cv2.imencode(".png", self.predictions[i])
            if not ok:
                raise RuntimeError(f"OpenCV could not encode the prediction for {item.image}")
            atomic_write(out, lambda p, data=png.tobytes(): p.write_bytes(data))
            entries.append({"prediction": out.name, "image": str(item.image), "label": str(item.label)})
        manifest = Path(folder) / f"gt_{split}.json"
        write_json(manifest, {"classes": list(c.names), "ignore_index": int(c.ignore_index),
                              "num_classes": int(c.num), "images": entries})
        return [pred_dir, manifest]
