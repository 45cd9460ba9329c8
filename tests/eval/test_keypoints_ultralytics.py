"""protocol='ultralytics' vs ultralytics' own kpt_iou, match_predictions and ap_per_class."""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from vsynth.eval.keypoints import KeypointEvaluator, ultralytics_oks
from vsynth.eval.matching import ULTRALYTICS_THRESHOLDS

from .coco_synth import make_coco

os.environ["YOLO_OFFLINE"] = "true"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
torch = pytest.importorskip("torch")
metrics = pytest.importorskip("ultralytics.utils.metrics")
validator = pytest.importorskip("ultralytics.engine.validator")


def _ultralytics_reference(gt: dict, results: list, sigmas: np.ndarray, max_det: int = 300) -> tuple[float, float]:
    """What ultralytics' pose validator computes, image by image, with ultralytics' functions."""
    iouv = torch.linspace(0.5, 0.95, 10)
    fake_validator = SimpleNamespace(iouv=iouv)
    cat_ids = sorted(c["id"] for c in gt["categories"])
    tps, confs, pred_cls, target_cls = [], [], [], []
    for image_id in sorted(img["id"] for img in gt["images"]):
        anns = [a for a in gt["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        dets = sorted(
            ((i, r) for i, r in enumerate(results) if r["image_id"] == image_id), key=lambda t: (-t[1]["score"], t[0])
        )
        dets = [r for _, r in dets][:max_det]
        gcls = np.array([cat_ids.index(a["category_id"]) for a in anns], dtype=float)
        dcls = np.array([cat_ids.index(r["category_id"]) for r in dets], dtype=float)
        if not anns or not dets:
            tp = np.zeros((len(dets), 10), dtype=bool)
        else:
            gk = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float64).view(len(anns), -1, 3)
            dk = torch.tensor([r["keypoints"] for r in dets], dtype=torch.float64).view(len(dets), -1, 3)
            area = torch.tensor([a["bbox"][2] * a["bbox"][3] for a in anns], dtype=torch.float64) * 0.53
            oks = metrics.kpt_iou(gk, dk, sigma=list(sigmas), area=area)
            tp = validator.BaseValidator.match_predictions(fake_validator, torch.tensor(dcls), torch.tensor(gcls), oks)
            tp = tp.numpy()
        tps.append(tp)
        confs.append(np.array([r["score"] for r in dets], dtype=float))
        pred_cls.append(dcls)
        target_cls.append(gcls)
    out = metrics.ap_per_class(
        np.concatenate(tps), np.concatenate(confs), np.concatenate(pred_cls), np.concatenate(target_cls)
    )
    ap = out[5]
    return float(ap.mean()), float(ap[:, 0].mean())


def test_thresholds_are_ultralytics_float32_linspace() -> None:
    assert np.array_equal(ULTRALYTICS_THRESHOLDS, torch.linspace(0.5, 0.95, 10).numpy().astype(np.float64))


def test_oks_equals_kpt_iou() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, size=(4, 7, 3))
    gt[..., 2] = rng.choice([0, 1, 2], size=(4, 7))
    gt[0, :, 2] = 0  # no labelled keypoint: ultralytics gives 0
    det = rng.uniform(0, 100, size=(6, 7, 2))
    sigmas = rng.uniform(0.02, 0.1, size=7)
    area = rng.uniform(100, 2000, size=4)
    expected = metrics.kpt_iou(
        torch.tensor(gt), torch.tensor(np.concatenate([det, np.ones((6, 7, 1))], -1)), torch.tensor(area), list(sigmas)
    ).numpy()
    ours = ultralytics_oks(det[None], gt[None], area[None], sigmas)[0]
    np.testing.assert_allclose(ours, expected.T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed, n_cats, max_dets", [(0, 1, 25), (1, 2, 25), (2, 1, 40), (3, 3, 30)])
def test_map_matches_ultralytics(seed: int, n_cats: int, max_dets: int) -> None:
    gt, results = make_coco(seed, n_images=40, n_keypoints=5, n_cats=n_cats, max_dets=max_dets)
    sigmas = np.random.default_rng(seed).uniform(0.03, 0.1, size=5)
    expected = _ultralytics_reference(gt, results, sigmas)
    ours = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas, protocol="ultralytics").compute()
    assert ours["oks_map"] == pytest.approx(expected[0], abs=1e-9)
    assert ours["oks_map50"] == pytest.approx(expected[1], abs=1e-9)
    assert 0 < ours["oks_map"] < 1


def test_max_det_truncates_per_image() -> None:
    gt, results = make_coco(5, n_images=30, n_keypoints=4, max_dets=40)
    sigmas = np.full(4, 0.07)
    expected = _ultralytics_reference(gt, results, sigmas, max_det=6)
    ours = KeypointEvaluator.from_coco_files(gt, results, sigmas=sigmas, protocol="ultralytics", max_dets=6).compute()
    assert ours["oks_map"] == pytest.approx(expected[0], abs=1e-9)


def test_default_sigmas_are_uniform_for_non_coco_schemas() -> None:
    gt, results = make_coco(6, n_images=20, n_keypoints=5)
    expected = _ultralytics_reference(gt, results, np.ones(5) / 5)
    ours = KeypointEvaluator.from_coco_files(gt, results, protocol="ultralytics").compute()
    assert ours["oks_map"] == pytest.approx(expected[0], abs=1e-9)
