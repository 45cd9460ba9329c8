"""Keypoints export: a tiny run's best.pt out as an ultralytics .pt (and ONNX), loaded by ultralytics
without vsynth, predicting what vsynth predicts on the same test images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.export.helpers import (match, onnx_export, onnx_outputs, reads_back_as_init, train_then_export,
                                  vsynth_predictions, without_vsynth)
from tests.keypoints.conftest import TINY

# frames of 128x96 at imgsz 128: the long side needs no resize, so ultralytics' predictor and vsynth's
# evaluation loader letterbox the same pixels
ARGS = [a for a in TINY if not a.startswith("data.demo.image_size")] + ["data.demo.image_size=[128,96]",
                                                                       "trainer.threads=1"]
N = 4


@pytest.fixture(scope="module")
def kp_export(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(best.pt of a one-epoch keypoints run from the demo's pretrained model, the cache, its export)."""
    root = tmp_path_factory.mktemp("export-kp")
    return train_then_export(ARGS, root, {"YOLO_CONFIG_DIR": str(root / "cache" / "ultralytics")})


def _ours(preds) -> list[dict[str, np.ndarray]]:
    return [{"boxes": p.boxes, "scores": p.scores, "classes": np.zeros(len(p.scores)), "extra": p.keypoints[..., :2]}
            for p in preds]


def _theirs(result: dict) -> list[dict[str, np.ndarray]]:
    return [{"boxes": np.asarray(r["boxes"]).reshape(-1, 4), "scores": np.asarray(r["scores"]),
             "classes": np.asarray(r["classes"]),
             "extra": np.asarray(r["keypoints"]).reshape(len(r["scores"]), -1, 3)[..., :2]} for r in result["images"]]


def _backend_predictions(out: Path, model: str, files: list[str], work: Path) -> dict:
    facts = json.loads((out / "export.json").read_text())["facts"]
    e = facts["eval"]
    return without_vsynth("ultralytics_predict.py", {"model": str(out / model), "images": files, "imgsz": facts["imgsz"],
                                                    "conf": e["conf"], "iou": e["iou"], "max_det": e["max_det"]}, work)


def test_ultralytics_loads_the_export_and_predicts_as_vsynth(kp_export, tmp_path):
    ckpt, cache, out = kp_export
    assert sorted(f.name for f in out.iterdir()) == ["export.json", "yolo_pose.pt"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["task"] == "keypoints" and manifest["source"]["weights"] == "ema" and manifest["onnx"] is None
    assert manifest["source"]["ckpt"] == str(ckpt.resolve())

    run, preds = vsynth_predictions(ckpt, cache, N)
    schema = run.task.schema
    files = run.task.eval_dataset("test").im_files[:N]
    got = _backend_predictions(out, "yolo_pose.pt", files, tmp_path / "backend")
    assert got["task"] == "pose" and got["names"] == {"0": schema.class_name}
    assert manifest["facts"]["kpt_names"] == schema.names and manifest["facts"]["kpt_shape"] == schema.kpt_shape
    ours, theirs = _ours(preds), _theirs(got)
    assert [Path(r["file"]).name for r in got["images"]] == [Path(f).name for f in files]
    assert sum(int((o["scores"] >= 0.25).sum()) for o in ours) >= N  # the pretrained demo model finds the vehicles
    compared = sum(match(o, t, min_score=0.05, slack=0.01, box_tol=0.05, score_tol=1e-3, extra_tol=0.05)
                   for o, t in zip(ours, theirs))
    assert compared >= 2 * N
    reads_back_as_init(run, out / "yolo_pose.pt", "ultralytics")


@pytest.mark.slow
def test_onnx_matches_torch_and_ultralytics_runs_it_as_vsynth_predicts(kp_export, tmp_path):
    import torch

    ckpt, cache, _ = kp_export
    out = onnx_export(ckpt, cache, tmp_path)
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["onnx"]["file"] == "yolo_pose.onnx" and set(manifest["onnx"]["inputs"]) == {"images"}

    # onnxruntime's raw output against the torch model's, on a letterboxed test image
    run, preds = vsynth_predictions(ckpt, cache, N)
    img = run.task.eval_dataset("test")[0]["img"].float()[None] / 255
    (raw,) = onnx_outputs(out / "yolo_pose.onnx", {"images": img.numpy()})
    with torch.no_grad():
        ref = run.model(img)[0].numpy()
    assert raw.shape == ref.shape
    np.testing.assert_allclose(raw, ref, rtol=1e-3, atol=1e-3 * float(np.abs(ref).max()))

    # ultralytics' own API on the graph (onnxruntime underneath), against vsynth's predictions
    files = run.task.eval_dataset("test").im_files[:N]
    got = _backend_predictions(out, "yolo_pose.onnx", files, tmp_path / "backend")
    compared = sum(match(o, t, min_score=0.05, slack=0.01, box_tol=0.5, score_tol=5e-3, extra_tol=0.5)
                   for o, t in zip(_ours(preds), _theirs(got)))
    assert compared >= 2 * N
