"""Keypoint evaluator vs pycocotools COCOeval(iouType='keypoints') and a loop-based PCK."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsynth.errors import ConfigError, DataError
from vsynth.eval.keypoints import KeypointEvaluator

from .coco_reference import coco_value, headline, reference_pck, run_cocoeval
from .coco_synth import make_coco

TOL = 1e-9


def _sigmas(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.02, 0.12, size=k)


@pytest.mark.parametrize(
    "seed, n_keypoints, n_cats, max_dets",
    [(0, 5, 1, 25), (1, 14, 1, 25), (2, 3, 2, 30), (3, 17, 1, 8), (4, 6, 3, 40), (5, 14, 1, 60)],
)
def test_oks_map_matches_pycocotools(seed: int, n_keypoints: int, n_cats: int, max_dets: int) -> None:
    gt, results = make_coco(seed, n_images=50, n_keypoints=n_keypoints, n_cats=n_cats, max_dets=max_dets)
    sigmas = _sigmas(n_keypoints, seed)
    reference = run_cocoeval(gt, results, "keypoints", sigmas)
    ours = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas).compute()
    assert ours["oks_map"] == pytest.approx(reference.stats[0], abs=TOL)
    assert ours["oks_map50"] == pytest.approx(reference.stats[1], abs=TOL)
    assert 0 < ours["oks_map"] < 1  # the data must exercise real matches, not a trivial 0


@pytest.mark.parametrize("max_dets", [5, 20, 100])
def test_max_dets_truncation_matches_pycocotools(max_dets: int) -> None:
    gt, results = make_coco(7, n_images=30, n_keypoints=4, max_dets=60)
    sigmas = _sigmas(4)
    ap, ap50 = headline(run_cocoeval(gt, results, "keypoints", sigmas, max_dets=max_dets))
    ours = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas, max_dets=max_dets).compute()
    assert ours["oks_map"] == pytest.approx(ap, abs=TOL)
    assert ours["oks_map50"] == pytest.approx(ap50, abs=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_pck_and_per_keypoint_match_reference_loops(seed: int, alpha: float) -> None:
    gt, results = make_coco(seed, n_images=40, n_keypoints=6, n_cats=1 + seed % 2)
    sigmas = _sigmas(6, seed)
    reference = run_cocoeval(gt, results, "keypoints", sigmas)
    visible, hits, similarity = reference_pck(reference, alpha)
    ours = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas, pck_alpha=alpha).compute()
    key = f"pck@{alpha:g}"
    assert ours[key] == pytest.approx(hits.sum() / visible.sum(), abs=1e-12)
    assert 0 < ours[key] < 1
    names = [f"kp{i}" for i in range(6)]
    assert list(ours["per_keypoint"]) == names
    for j, name in enumerate(names):
        assert ours["per_keypoint"][name]["pck"] == pytest.approx(hits[j] / visible[j], abs=1e-12)
        assert ours["per_keypoint"][name]["oks"] == pytest.approx(similarity[j] / visible[j], rel=1e-9)


def _to_stream(gt: dict, results: list, k: int, box_format: str, rng: np.random.Generator, torch_tensors: bool):
    """Per-image targets/preds in the update() format, from COCO dicts."""
    by_image_gt: dict[int, list] = {img["id"]: [] for img in gt["images"]}
    by_image_det: dict[int, list] = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        by_image_gt[ann["image_id"]].append(ann)
    for res in results:
        by_image_det[res["image_id"]].append(res)
    items = []
    for image_id in by_image_gt:
        anns, dets = by_image_gt[image_id], by_image_det[image_id]
        boxes = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        if box_format == "xyxy":
            boxes[:, 2:] += boxes[:, :2]
        target = {
            "keypoints": np.array([a["keypoints"] for a in anns], dtype=float).reshape(-1, k, 3),
            "boxes": boxes,
            "areas": np.array([a["area"] for a in anns], dtype=float),
            "iscrowd": np.array([a["iscrowd"] for a in anns]),
            "labels": np.array([a["category_id"] for a in anns]),
        }
        pred = {
            "keypoints": np.array([r["keypoints"] for r in dets], dtype=float).reshape(-1, k, 3),
            "scores": np.array([r["score"] for r in dets], dtype=float),
            "labels": np.array([r["category_id"] for r in dets]),
        }
        if torch_tensors:
            import torch

            target = {key: torch.as_tensor(v) for key, v in target.items()}
            pred = {key: torch.as_tensor(v) for key, v in pred.items()}
        items.append((image_id, target, pred))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


@pytest.mark.parametrize("protocol", ["coco", "ultralytics"])
@pytest.mark.parametrize("torch_tensors", [False, True])
def test_streaming_update_equals_file_path(protocol: str, torch_tensors: bool) -> None:
    """Random batch sizes, random image order, several blocks: same numbers as from files."""
    gt, results = make_coco(11, n_images=60, n_keypoints=5, n_cats=2)
    sigmas = _sigmas(5)
    expected = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas, protocol=protocol).compute()
    rng = np.random.default_rng(0)
    stream = _to_stream(gt, results, 5, "xyxy", rng, torch_tensors)
    categories = {c["id"]: c["name"] for c in gt["categories"]}
    evaluator = KeypointEvaluator(
        sigmas, protocol=protocol, categories=categories, keypoint_names=[f"kp{i}" for i in range(5)]
    )
    evaluator.flush_images = 7
    empty_target = {"keypoints": np.zeros((0, 5, 3)), "boxes": np.zeros((0, 4)), "areas": [], "labels": []}
    empty_pred = {"keypoints": np.zeros((0, 5, 3)), "scores": [], "labels": []}
    evaluator.update([stream[0][0]], [empty_target], [empty_pred])  # forgotten by reset()
    evaluator.reset()
    i = 0
    while i < len(stream):
        size = int(rng.integers(1, 9))
        batch = stream[i : i + size]
        evaluator.update([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
        i += size
    ours = evaluator.compute()
    assert len(evaluator._matched) > 3  # several blocks were merged
    for key in ("oks_map", "oks_map50", "pck@0.05"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-12), key
    assert list(ours["per_keypoint"]) == list(expected["per_keypoint"])
    for name, values in expected["per_keypoint"].items():
        assert ours["per_keypoint"][name] == pytest.approx(values, rel=1e-9), name


def test_crowd_and_unlabelled_ground_truth_are_ignored_like_coco() -> None:
    """A detection on a crowd region or on a GT without labelled keypoints is neither TP nor FP."""
    k = 3
    kp = [10.0, 10.0, 2, 20.0, 20.0, 2, 30.0, 10.0, 1]
    gt = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "car", "keypoints": ["a", "b", "c"], "kpt_oks_sigmas": [0.05, 0.05, 0.05]}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 30, 20], "area": 600.0, "iscrowd": 0,
             "keypoints": kp, "num_keypoints": 3},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 50, 50], "area": 2500.0, "iscrowd": 1,
             "keypoints": [0] * 9, "num_keypoints": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600.0, "iscrowd": 0,
             "keypoints": [0] * 9, "num_keypoints": 0},
        ],
    }
    results = [
        {"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": kp},
        {"image_id": 1, "category_id": 1, "score": 0.8, "keypoints": [120, 120, 1, 125, 125, 1, 130, 120, 1]},
        {"image_id": 2, "category_id": 1, "score": 0.95, "keypoints": [10, 10, 1, 20, 20, 1, 30, 10, 1]},
    ]
    reference = run_cocoeval(gt, results, "keypoints", [0.05] * k)
    ours = KeypointEvaluator.from_coco_files(gt, results).compute()
    assert reference.stats[0] == pytest.approx(1.0)
    assert ours["oks_map"] == pytest.approx(reference.stats[0], abs=TOL)
    assert ours["pck@0.05"] == 1.0
    assert ours["num_gt"] == 1


def test_no_predictions_scores_zero_and_no_ground_truth_is_nan() -> None:
    gt, _ = make_coco(3, n_images=10, n_keypoints=4, empty_image_rate=0.0)
    ours = KeypointEvaluator.from_coco_files(gt, [], sigmas=_sigmas(4)).compute()
    assert ours["oks_map"] == 0.0 and ours["oks_map50"] == 0.0 and ours["pck@0.05"] == 0.0
    assert all(v["pck"] == 0.0 for v in ours["per_keypoint"].values())

    gt_empty = dict(gt, annotations=[])
    _, results = make_coco(3, n_images=10, n_keypoints=4)
    reference = run_cocoeval(gt_empty, results, "keypoints", _sigmas(4))
    ours = KeypointEvaluator.from_coco_files(gt_empty, results, sigmas=_sigmas(4)).compute()
    assert math.isnan(coco_value(reference.stats[0])) and math.isnan(ours["oks_map"])
    assert math.isnan(ours["pck@0.05"])


def test_sigmas_are_required_and_checked() -> None:
    gt, results = make_coco(0, n_images=5, n_keypoints=4)
    with pytest.raises(TypeError):
        KeypointEvaluator()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="--sigmas with 4 values"):
        KeypointEvaluator.from_coco_files(gt, results)
    with pytest.raises(ConfigError, match="3 values given, but .* has 4 keypoints"):
        KeypointEvaluator.from_coco_files(gt, results, sigmas=[0.1, 0.1, 0.1])
    with pytest.raises(ConfigError, match="positive"):
        KeypointEvaluator([0.1, -0.1])
    evaluator = KeypointEvaluator([0.05] * 3)
    target = {"keypoints": np.zeros((1, 4, 3)), "boxes": np.ones((1, 4)), "areas": [1.0]}
    with pytest.raises(DataError, match=r"target 'keypoints' has shape \(1, 4, 3\), expected \(N, 3, 3\)"):
        evaluator.update([1], [target], [{"keypoints": np.zeros((0, 3, 3)), "scores": []}])


def test_sigmas_default_to_the_ground_truth_category() -> None:
    gt, results = make_coco(2, n_images=20, n_keypoints=4)
    sigmas = [0.03, 0.06, 0.09, 0.04]
    gt["categories"][0]["kpt_oks_sigmas"] = sigmas
    reference = run_cocoeval(gt, results, "keypoints", sigmas)
    ours = KeypointEvaluator.from_coco_files(gt, results).compute()
    assert ours["oks_map"] == pytest.approx(reference.stats[0], abs=TOL)


def test_coco_protocol_needs_areas_in_stream() -> None:
    evaluator = KeypointEvaluator([0.05] * 2)
    target = {"keypoints": np.ones((1, 2, 3)), "boxes": np.array([[0, 0, 4, 4]])}
    with pytest.raises(DataError, match="'areas' is required"):
        evaluator.update([1], [target], [{"keypoints": np.ones((1, 2, 2)), "scores": [0.5]}])
