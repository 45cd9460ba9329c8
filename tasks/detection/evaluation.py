"""Scoring one split: YOLOX detections into vsynth's COCO box evaluator, and the COCO files.

The evaluation loop is vsynth's (:mod:`vsynth.train.evaluation`); this is the glue it feeds. The
ground truth is the split as vsynth read it (boxes clipped to the image, degenerate ones dropped,
crowd flags kept), with the file's own image and category ids, so ``gt_<split>.json`` plus
``predictions_<split>.json`` (COCO results) reproduce ``metrics.json`` in pycocotools or
``python -m vsynth.eval detection``, and feed the kill switch's paired bootstrap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vsynth.task import SplitEvaluator

from tasks.detection.data import BoxSet
from tasks.detection.predict import Detections


def _xywh(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


class DetectionSplitEvaluator(SplitEvaluator):
    """COCO AP, AP50, AP75, AR@100 and per-class AP of one split."""

    def __init__(self, boxes: BoxSet) -> None:
        from vsynth.eval.detection import DetectionEvaluator

        self.boxes = boxes
        self.cat_ids = np.asarray(boxes.category_ids, dtype=np.int64)
        self.evaluator = DetectionEvaluator(dict(zip(boxes.category_ids, boxes.class_names)), box_format="xywh")
        self.results: list[dict[str, Any]] = []
        self.seen: list[int] = []

    def process(self, indices: Sequence[int], batch: Any, outputs: list[Detections]) -> None:
        boxes = self.boxes
        targets, preds = [], []
        for i, d in zip(indices, outputs):
            targets.append({"boxes": _xywh(boxes.boxes[i]), "labels": self.cat_ids[boxes.labels[i]],
                            "areas": boxes.areas[i], "iscrowd": boxes.crowd[i].astype(np.int64)})
            pb = _xywh(d.boxes)
            labels = self.cat_ids[d.classes]
            preds.append({"boxes": pb, "scores": d.scores, "labels": labels})
            image_id = int(boxes.image_ids[i])
            for b, s, c in zip(pb, d.scores, labels):
                self.results.append({"image_id": image_id, "category_id": int(c), "score": float(s),
                                     "bbox": [float(v) for v in b]})
        self.evaluator.update([boxes.image_ids[i] for i in indices], targets, preds)
        self.seen.extend(int(i) for i in indices)

    def compute(self) -> dict[str, Any]:
        m = self.evaluator.compute()
        out: dict[str, Any] = {"ap": m["ap"], "ap50": m["ap50"], "ap75": m["ap75"], "ar100": m["ar100"]}
        for name, ap in m["per_class_ap"].items():
            if not math.isnan(ap):  # classes without ground truth in this split have no AP
                out[f"ap_class/{name}"] = ap
        out["num_images"], out["num_gt"] = m["num_images"], m["num_gt"]
        return out

    def write(self, folder: Path, split: str) -> list[Path]:
        """``gt_<split>.json`` (COCO detection ground truth as scored) and ``predictions_<split>.json``."""
        from vsynth.run.atomic import write_json

        b = self.boxes
        images, anns = [], []
        for i in sorted(self.seen):
            h, w = b.sizes[i]
            images.append({"id": int(b.image_ids[i]), "file_name": str(b.files[i]), "height": int(h), "width": int(w)})
            for box, lab, area, crowd in zip(_xywh(b.boxes[i]), b.labels[i], b.areas[i], b.crowd[i]):
                anns.append({"id": len(anns) + 1, "image_id": int(b.image_ids[i]), "category_id": int(self.cat_ids[lab]),
                             "bbox": [float(v) for v in box], "area": float(area), "iscrowd": int(bool(crowd))})
        gt = {"info": {"description": f"vsynth detection {split} ({b.path}), boxes as scored: clipped to the image, "
                                      "degenerate ones dropped"},
              "images": images, "annotations": anns,
              "categories": [{"id": int(c), "name": n} for c, n in zip(b.category_ids, b.class_names)]}
        paths = [Path(folder) / f"gt_{split}.json", Path(folder) / f"predictions_{split}.json"]
        write_json(paths[0], gt)
        write_json(paths[1], self.results)
        return paths
