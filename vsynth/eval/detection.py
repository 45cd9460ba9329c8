"""Box detection evaluation: COCO AP (0.50:0.95), AP50, AP75, AR@100 and per-class AP.

The numbers are those of ``pycocotools`` ``COCOeval(iouType="bbox")``: stats[0], stats[1],
stats[2] and stats[8], and per-class AP as the mean of ``eval['precision'][:, :, k, 0, -1]`` over
valid entries (area range 'all', maxDets 100). YOLOX and most detection code report exactly
these, so a vsynth run and a YOLOX log can be compared directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vsynth.errors import DataError
from vsynth.eval import coco_io
from vsynth.eval.arrays import boxes_to_xywh, check_box_format, float_array, int_array, require
from vsynth.eval.coco_style import (
    InstanceBlock,
    InstanceEvaluator,
    InstanceState,
    gt_ignore_flags,
    per_image_source,
    unique_names,
    weighted_total,
)
from vsynth.eval.matching import COCO_THRESHOLDS, mean_valid

_T75 = int(np.where(COCO_THRESHOLDS == 0.75)[0][0])  # how COCOeval.summarize finds AP75


def coco_box_iou(det: np.ndarray, gt: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``bbIou`` for (P, D, 4) vs (P, G, 4) xywh boxes -> (P, D, G).

    For a crowd ground truth the "union" is the detection's own area (the fraction of the
    detection inside the crowd region). Same operation order as the C code, hence same bits.
    """
    dx, dy, dw, dh = (det[:, :, None, i] for i in range(4))
    gx, gy, gw, gh = (gt[:, None, :, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    det_area = dw * dh
    union = np.where(gt_crowd[:, None, :], det_area, det_area + gw * gh - inter)
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


class DetectionEvaluator(InstanceEvaluator):
    """Streaming COCO box evaluator (DDP-aware).

    ``update(image_ids, targets, preds)`` takes, per image, one target and one prediction mapping
    (numpy arrays, torch tensors or lists), boxes in ``box_format`` (``"xyxy"`` by default, as
    models output them; ``"xywh"`` is COCO's x, y, width, height):

    * target: ``boxes`` (G, 4), ``labels`` (G,) category ids; optional ``areas`` (G,) (default:
      box area; COCO files usually carry the mask area, which only decides area ranges and
      ignoring of objects outside [0, 1e10]), ``iscrowd`` (G,) 0/1.
    * prediction: ``boxes`` (N, 4), ``scores`` (N,), ``labels`` (N,) category ids.
    """

    def __init__(
        self,
        categories: Mapping[int, str] | Sequence[str],
        *,
        box_format: str = "xyxy",
        max_dets: int = 100,
    ) -> None:
        if not isinstance(categories, Mapping):
            categories = {i: str(name) for i, name in enumerate(categories)}
        self.box_format = check_box_format(box_format)
        super().__init__(categories, "coco", max_dets)

    def _image_parts(self, local: int, image_id: Hashable, target: Mapping[str, Any], pred: Mapping[str, Any],
                     src: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Validated ground-truth and detection arrays of one image (``local``: its index in the batch)."""
        boxes = float_array(require(target, "boxes", src, "target"), src, "target 'boxes'", (None, 4))
        n_gt = boxes.shape[0]
        boxes = boxes_to_xywh(boxes, self.box_format)
        labels = int_array(require(target, "labels", src, "target"), src, "target 'labels'", n_gt)
        if "areas" in target:
            areas = float_array(target["areas"], src, "target 'areas'", (n_gt,))
        else:
            areas = boxes[:, 2] * boxes[:, 3]
        crowd = int_array(target.get("iscrowd", np.zeros(n_gt)), src, "target 'iscrowd'", n_gt) != 0
        pboxes = float_array(require(pred, "boxes", src, "pred"), src, "pred 'boxes'", (None, 4))
        n_det = pboxes.shape[0]
        pboxes = boxes_to_xywh(pboxes, self.box_format)
        scores = float_array(require(pred, "scores", src, "pred"), src, "pred 'scores'", (n_det,))
        plabels = int_array(require(pred, "labels", src, "pred"), src, "pred 'labels'", n_det)
        return (
            {
                "image": np.full(n_gt, local, dtype=np.int64),
                "cat": self._category_index(labels, src, "target 'labels'"),
                "boxes": boxes,
                "areas": areas,
                "crowd": crowd,
            },
            {
                "image": np.full(n_det, local, dtype=np.int64),
                "cat": self._category_index(plabels, src, "pred 'labels'"),
                "score": scores,
                "boxes": pboxes,
            },
        )

    def _add_raw(self, image_ids: np.ndarray, gt: dict[str, np.ndarray], det: dict[str, np.ndarray]) -> None:
        """Add already-validated flat arrays (``cat`` as category index), as ``from_coco_files`` does."""
        gt = dict(gt, ignore=gt_ignore_flags(gt["crowd"], gt["areas"]))
        det = dict(det, area=det["boxes"][:, 2] * det["boxes"][:, 3])  # loadRes: area = w * h
        self._add_block(InstanceBlock(image_ids=image_ids, gt=gt, det=det))

    @classmethod
    def from_coco_files(
        cls,
        gt_json: str | Path | Mapping[str, Any],
        pred_json: str | Path | Sequence[Mapping[str, Any]],
        *,
        max_dets: int = 100,
    ) -> DetectionEvaluator:
        """An evaluator filled from a COCO ground-truth file and a COCO results (bbox) file."""
        gt = coco_io.load_detection_gt(gt_json)
        evaluator = cls(gt.categories, box_format="xywh", max_dets=max_dets)
        det = coco_io.load_detection_results(pred_json, gt)
        evaluator._register_image_ids(gt.image_ids.tolist(), gt.path)
        evaluator._add_raw(gt.image_ids, gt.arrays, det)
        return evaluator

    def _similarity(self, block: InstanceBlock, det_idx: np.ndarray, gt_idx: np.ndarray) -> np.ndarray:
        return coco_box_iou(block.det["boxes"][det_idx], block.gt["boxes"][gt_idx], block.gt["crowd"][gt_idx])

    def _summarize(self, state: InstanceState, image_weights: np.ndarray | None) -> dict[str, Any]:
        precision, recall = state.coco_precision_recall(image_weights)
        names = unique_names(list(self.categories.values()), list(self.categories))
        gt_total = weighted_total(state.matched.gt_count, image_weights).sum()
        return {
            "ap": mean_valid(precision),
            "ap50": mean_valid(precision[0]),
            "ap75": mean_valid(precision[_T75]),
            f"ar{self.max_dets}": mean_valid(recall),
            "per_class_ap": {name: mean_valid(precision[:, :, c]) for c, name in enumerate(names)},
            "num_images": int(state.image_ids.size if image_weights is None else image_weights.sum()),
            "num_gt": int(gt_total),
        }
