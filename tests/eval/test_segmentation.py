"""Segmentation evaluator vs MMSegmentation's IoUMetric on the same label maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsynth.errors import DataError
from vsynth.eval.segmentation import SegmentationEvaluator

torch = pytest.importorskip("torch")
iou_metric = pytest.importorskip("mmseg.evaluation.metrics.iou_metric")
IoUMetric = iou_metric.IoUMetric


def _maps(seed: int, n: int, num_classes: int, ignore: int, absent: tuple[int, ...] = ()) -> list[tuple]:
    """(pred, gt) pairs of varying sizes; classes in ``absent`` never appear in either."""
    rng = np.random.default_rng(seed)
    present = [c for c in range(num_classes) if c not in absent]
    pairs = []
    for _ in range(n):
        h, w = rng.integers(5, 40, size=2)
        gt = rng.choice(present, size=(h, w))
        gt[rng.random((h, w)) < 0.1] = ignore
        pred = np.where(rng.random((h, w)) < 0.6, gt, rng.choice(present, size=(h, w)))
        pred[pred == ignore] = present[0]
        pairs.append((pred.astype(np.uint8), gt.astype(np.uint8)))
    return pairs


def _mmseg_reference(pairs: list[tuple], num_classes: int, ignore: int, nan_to_num=None) -> dict:
    """Unrounded IoUMetric numbers (its own static methods), as fractions."""
    results = [
        IoUMetric.intersect_and_union(torch.from_numpy(p).long(), torch.from_numpy(g).long(), num_classes, ignore)
        for p, g in pairs
    ]
    totals = [sum(r[i] for r in results) for i in range(4)]
    metrics = IoUMetric.total_area_to_metrics(*totals, ["mIoU"], nan_to_num)
    return {
        "aacc": float(metrics["aAcc"]),
        "iou": metrics["IoU"],
        "acc": metrics["Acc"],
        "miou": float(np.nanmean(metrics["IoU"])),
        "macc": float(np.nanmean(metrics["Acc"])),
    }


@pytest.mark.parametrize(
    "seed, num_classes, ignore, absent",
    [(0, 4, 255, ()), (1, 6, 255, (2,)), (2, 3, 0, ()), (3, 5, 255, (1, 4)), (4, 2, 255, ())],
)
def test_matches_iou_metric(seed: int, num_classes: int, ignore: int, absent: tuple) -> None:
    pairs = _maps(seed, 12, num_classes, ignore, absent)
    evaluator = SegmentationEvaluator(num_classes, ignore_index=ignore)
    for i in range(0, len(pairs), 5):
        batch = pairs[i : i + 5]
        evaluator.update([p for p, _ in batch], [g for _, g in batch])
    ours = evaluator.compute()
    ref = _mmseg_reference(pairs, num_classes, ignore)
    for key in ("miou", "macc", "aacc"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    np.testing.assert_allclose(list(ours["iou"].values()), ref["iou"], atol=1e-6)
    np.testing.assert_allclose(list(ours["acc"].values()), ref["acc"], atol=1e-6)
    for c in absent:
        if c != ignore:
            assert math.isnan(ours["iou"][str(c)]) and math.isnan(ours["acc"][str(c)])


def test_class_predicted_but_absent_from_ground_truth() -> None:
    gt = np.zeros((4, 4), dtype=np.int64)
    pred = gt.copy()
    pred[0, 0] = 2
    evaluator = SegmentationEvaluator(3, class_names=["bg", "unused", "fg"])
    evaluator.update(pred[None], gt[None])
    ours = evaluator.compute()
    assert ours["iou"]["fg"] == 0.0 and math.isnan(ours["acc"]["fg"])
    assert math.isnan(ours["iou"]["unused"])
    ref = _mmseg_reference([(pred, gt)], 3, 255)
    assert ours["miou"] == pytest.approx(ref["miou"]) and ours["macc"] == pytest.approx(ref["macc"])


def test_end_to_end_iou_metric_rounded_percentages() -> None:
    """IoUMetric.process/compute_metrics reports percentages rounded to 2 decimals."""
    pairs = _maps(7, 6, 4, 255)
    metric = IoUMetric(ignore_index=255)
    metric.dataset_meta = {"classes": ["a", "b", "c", "d"]}
    samples = [
        {"pred_sem_seg": {"data": torch.from_numpy(p).long()[None]}, "gt_sem_seg": {"data": torch.from_numpy(g).long()[None]}}
        for p, g in pairs
    ]
    metric.process({}, samples)
    ref = metric.compute_metrics(metric.results)
    evaluator = SegmentationEvaluator(4, class_names=["a", "b", "c", "d"])
    evaluator.update([p for p, _ in pairs], [g for _, g in pairs])
    ours = evaluator.compute()
    assert round(ours["miou"] * 100, 2) == pytest.approx(ref["mIoU"], abs=1e-9)
    assert round(ours["macc"] * 100, 2) == pytest.approx(ref["mAcc"], abs=1e-9)
    assert round(ours["aacc"] * 100, 2) == pytest.approx(ref["aAcc"], abs=1e-9)


def test_nan_to_num_like_iou_metric() -> None:
    pairs = _maps(5, 4, 5, 255, absent=(3,))
    evaluator = SegmentationEvaluator(5, nan_to_num=0)
    evaluator.update([p for p, _ in pairs], [g for _, g in pairs])
    ours = evaluator.compute()
    ref = _mmseg_reference(pairs, 5, 255, nan_to_num=0)
    assert ours["iou"]["3"] == 0.0
    assert ours["miou"] == pytest.approx(ref["miou"], abs=1e-6)  # IoUMetric computes in float32


def test_torch_and_numpy_inputs_agree() -> None:
    pairs = _maps(9, 5, 4, 255)
    a, b = SegmentationEvaluator(4), SegmentationEvaluator(4)
    for p, g in pairs:
        a.update(p, g)
        b.update(torch.from_numpy(p).long()[None, None], torch.from_numpy(g).long()[None])
    assert a.compute() == b.compute()


def test_confusion_matrix_memory_is_constant() -> None:
    evaluator = SegmentationEvaluator(3)
    for p, g in _maps(1, 20, 3, 255):
        evaluator.update(p, g)
    assert evaluator._confusion.shape == (3, 3) and evaluator._per_image == []


def test_bad_inputs_name_the_image() -> None:
    evaluator = SegmentationEvaluator(3)
    with pytest.raises(DataError, match=r"update\(\): image 'a': prediction shape \(4, 5\) differs from ground-truth shape \(4, 4\)"):
        evaluator.update([np.zeros((4, 5), np.uint8)], [np.zeros((4, 4), np.uint8)], image_ids=["a"])
    with pytest.raises(DataError, match="ground-truth label 7 is outside"):
        evaluator.update(np.zeros((4, 4), np.uint8), np.full((4, 4), 7, np.uint8))
    with pytest.raises(DataError, match="predicted label 3 is outside"):
        evaluator.update(np.full((4, 4), 3, np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="integer class ids"):
        evaluator.update(np.full((4, 4), 0.5), np.zeros((4, 4), np.uint8))
