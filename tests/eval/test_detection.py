"""Detection evaluator vs pycocotools COCOeval(iouType='bbox')."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vsynth.eval.detection import DetectionEvaluator, coco_box_iou

from .coco_reference import coco_value, per_class_ap, run_cocoeval
from .coco_synth import make_coco

TOL = 1e-9


def test_iou_is_bitwise_pycocotools() -> None:
    rng = np.random.default_rng(0)
    det = np.round(rng.uniform(0, 50, size=(30, 4)), 1)
    gt = np.round(rng.uniform(0, 50, size=(12, 4)), 1)
    gt[3] = det[5]  # identical boxes
    gt[4, 2:] = 0  # degenerate box
    crowd = rng.random(12) < 0.3
    expected = mask_utils.iou(det.tolist(), gt.tolist(), crowd.astype(np.uint8).tolist())
    ours = coco_box_iou(det[None], gt[None], crowd[None])[0]
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize(
    "seed, n_cats, max_dets, crowd_rate",
    [(0, 3, 30, 0.1), (1, 7, 60, 0.2), (2, 1, 130, 0.1), (3, 5, 150, 0.0), (4, 7, 20, 0.3)],
)
def test_ap_ar_and_per_class_match_pycocotools(seed: int, n_cats: int, max_dets: int, crowd_rate: float) -> None:
    gt, results = make_coco(
        seed, n_images=50, n_cats=n_cats, keypoints=False, max_dets=max_dets, crowd_rate=crowd_rate, max_objects=6
    )
    reference = run_cocoeval(gt, results, "bbox")
    ours = DetectionEvaluator.from_coco_files(gt, results).compute()
    for key, index in (("ap", 0), ("ap50", 1), ("ap75", 2), ("ar100", 8)):
        assert ours[key] == pytest.approx(coco_value(reference.stats[index]), abs=TOL, nan_ok=True), key
    assert 0 < ours["ap"] < 1
    names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    assert list(ours["per_class_ap"]) == names
    for name, value in zip(names, per_class_ap(reference)):
        assert ours["per_class_ap"][name] == pytest.approx(value, abs=TOL, nan_ok=True), name


def test_category_without_ground_truth_is_nan_and_excluded() -> None:
    gt, results = make_coco(8, n_images=30, n_cats=2, keypoints=False)
    gt["categories"].append({"id": 3, "name": "never"})
    results.append({"image_id": gt["images"][0]["id"], "category_id": 3, "score": 0.99, "bbox": [1, 1, 5, 5]})
    reference = run_cocoeval(gt, results, "bbox")
    ours = DetectionEvaluator.from_coco_files(gt, results).compute()
    assert math.isnan(ours["per_class_ap"]["never"])
    assert ours["ap"] == pytest.approx(reference.stats[0], abs=TOL)


def test_streaming_xyxy_equals_file_path() -> None:
    gt, results = make_coco(9, n_images=40, n_cats=3, keypoints=False, max_dets=30)
    expected = DetectionEvaluator.from_coco_files(gt, results).compute()
    evaluator = DetectionEvaluator({c["id"]: c["name"] for c in gt["categories"]}, box_format="xyxy")
    evaluator.flush_images = 5
    for img in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        dets = [r for r in results if r["image_id"] == img["id"]]
        boxes = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        pboxes = np.array([r["bbox"] for r in dets], dtype=float).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        pboxes[:, 2:] += pboxes[:, :2]
        target = {
            "boxes": boxes,
            "labels": [a["category_id"] for a in anns],
            "areas": [a["area"] for a in anns],
            "iscrowd": [a["iscrowd"] for a in anns],
        }
        pred = {"boxes": pboxes, "scores": [r["score"] for r in dets], "labels": [r["category_id"] for r in dets]}
        evaluator.update([img["id"]], [target], [pred])
    ours = evaluator.compute()
    # xyxy -> xywh rounding can move an IoU by one ulp; AP is unaffected unless a threshold is hit exactly
    for key in ("ap", "ap50", "ap75", "ar100"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key


def test_no_predictions_gives_zero() -> None:
    gt, _ = make_coco(1, n_images=10, n_cats=2, keypoints=False, empty_image_rate=0.0)
    ours = DetectionEvaluator.from_coco_files(gt, []).compute()
    assert ours["ap"] == 0.0 and ours["ap50"] == 0.0 and ours["ar100"] == 0.0
