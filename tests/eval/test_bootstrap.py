"""Paired bootstrap: exact at full sample, resamples equal to evaluating the resampled test set."""

from __future__ import annotations

import numpy as np
import pytest

from vsynth.errors import ConfigError, DataError
from vsynth.eval.bootstrap import paired_bootstrap
from vsynth.eval.detection import DetectionEvaluator
from vsynth.eval.keypoints import KeypointEvaluator
from vsynth.eval.segmentation import SegmentationEvaluator

from .coco_reference import per_class_ap, reference_pck, run_cocoeval
from .coco_synth import expand_images, make_coco

SIGMAS = np.array([0.05, 0.07, 0.04, 0.09, 0.06])


def _keypoint_pair(n_images: int = 60):
    gt, res_a = make_coco(0, n_images=n_images, n_keypoints=5, score_decimals=None)
    _, res_b = make_coco(0, n_images=n_images, n_keypoints=5, score_decimals=None, pred_seed=1)
    a = KeypointEvaluator.from_coco_files(gt, res_a, sigmas=SIGMAS)
    b = KeypointEvaluator.from_coco_files(gt, res_b, sigmas=SIGMAS)
    return gt, res_a, a, b


@pytest.mark.parametrize("metric", ["oks_map", "oks_map50", "pck@0.05", "per_keypoint/kp2/pck"])
def test_delta_is_exact_and_inside_the_interval(metric: str) -> None:
    _, _, a, b = _keypoint_pair()
    out = paired_bootstrap(a, b, metric=metric, n=200, seed=3)
    value = lambda m, key: m[key] if "/" not in key else m["per_keypoint"]["kp2"]["pck"]  # noqa: E731
    assert out["delta"] == value(a.compute(), metric) - value(b.compute(), metric)
    assert out["low"] <= out["delta"] <= out["high"]
    assert out["low"] < out["high"]
    assert 0 <= out["prob_a_better"] <= 1 and 0 <= out["p_value"] <= 1
    assert out == paired_bootstrap(a, b, metric=metric, n=200, seed=3)  # seeded


def test_identical_predictions_give_a_zero_interval() -> None:
    gt, res_a, a, _ = _keypoint_pair()
    twin = KeypointEvaluator.from_coco_files(gt, res_a, sigmas=SIGMAS)
    out = paired_bootstrap(a, twin, n=100)
    assert (out["delta"], out["low"], out["high"]) == (0.0, 0.0, 0.0)
    assert out["prob_a_better"] == 0.0 and out["p_value"] == 1.0


def test_resample_equals_evaluating_the_resampled_test_set_keypoints() -> None:
    """Weights are image multiplicities: same numbers as pycocotools on the duplicated images."""
    gt, res, a, _ = _keypoint_pair(40)
    weights = np.bincount(np.random.default_rng(5).integers(0, 40, size=40), minlength=40)
    big_gt, big_res = expand_images(gt, res, weights)
    reference = run_cocoeval(big_gt, big_res, "keypoints", SIGMAS)
    visible, hits, _ = reference_pck(reference, 0.05)
    ours = a.bootstrap_state().summarize(weights)
    assert ours["oks_map"] == pytest.approx(reference.stats[0], abs=1e-9)
    assert ours["oks_map50"] == pytest.approx(reference.stats[1], abs=1e-9)
    assert ours["pck@0.05"] == pytest.approx(hits.sum() / visible.sum(), abs=1e-12)


def test_resample_equals_evaluating_the_resampled_test_set_detection() -> None:
    gt, res = make_coco(2, n_images=40, n_cats=3, keypoints=False, score_decimals=None, max_objects=5)
    evaluator = DetectionEvaluator.from_coco_files(gt, res)
    weights = np.bincount(np.random.default_rng(1).integers(0, 40, size=40), minlength=40)
    reference = run_cocoeval(*expand_images(gt, res, weights), "bbox")
    ours = evaluator.bootstrap_state().summarize(weights)
    for key, index in (("ap", 0), ("ap50", 1), ("ap75", 2), ("ar100", 8)):
        assert ours[key] == pytest.approx(reference.stats[index], abs=1e-9), key
    assert list(ours["per_class_ap"].values()) == pytest.approx(per_class_ap(reference), abs=1e-9)


def test_unit_weights_reproduce_compute() -> None:
    _, _, a, _ = _keypoint_pair()
    state = a.bootstrap_state()
    assert state.summarize(np.ones(state.image_ids.size, dtype=np.int64)) == a.compute()


def test_segmentation_bootstrap() -> None:
    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 3, size=(8, 8)) for _ in range(30)]
    preds_a = [np.where(rng.random(g.shape) < 0.8, g, rng.integers(0, 3, g.shape)) for g in gts]
    preds_b = [np.where(rng.random(g.shape) < 0.6, g, rng.integers(0, 3, g.shape)) for g in gts]
    a = SegmentationEvaluator(3, keep_per_image=True)
    b = SegmentationEvaluator(3, keep_per_image=True)
    a.update(preds_a, gts, image_ids=list(range(30)))
    b.update(preds_b[::-1], gts[::-1], image_ids=list(range(30))[::-1])  # order does not matter
    out = paired_bootstrap(a, b, metric="miou", n=300)
    assert out["delta"] == pytest.approx(a.compute()["miou"] - b.compute()["miou"], abs=1e-15)
    assert 0 < out["low"] <= out["delta"] <= out["high"]
    assert out["prob_a_better"] == 1.0


def test_mismatched_images_and_unknown_metric_are_errors() -> None:
    gt, res_a, a, _ = _keypoint_pair()
    fewer = dict(gt, images=gt["images"][:-1])
    fewer["annotations"] = [x for x in gt["annotations"] if x["image_id"] != gt["images"][-1]["id"]]
    res = [r for r in res_a if r["image_id"] != gt["images"][-1]["id"]]
    b = KeypointEvaluator.from_coco_files(fewer, res, sigmas=SIGMAS)
    with pytest.raises(DataError, match="different images"):
        paired_bootstrap(a, b, n=10)
    with pytest.raises(ConfigError, match="not a metric"):
        paired_bootstrap(a, a, metric="miou", n=10)
    with pytest.raises(ConfigError, match="is a group"):
        paired_bootstrap(a, a, metric="per_keypoint", n=10)
