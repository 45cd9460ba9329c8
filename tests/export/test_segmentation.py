"""Segmentation export: a tiny run's best.pt out as an mmseg config + checkpoint (and ONNX), loaded by
``mmseg.apis.init_model`` without vsynth, predicting what vsynth predicts on the same test images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.export.helpers import (onnx_export, onnx_outputs, reads_back_as_init, train_then_export, vsynth_predictions,
                                  without_vsynth)
from tests.segmentation.conftest import seg_args

N = 3


@pytest.fixture(scope="module")
def seg_export(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(best.pt of the tiny run, the cache, its export)."""
    return train_then_export(seg_args("trainer.threads=1"), tmp_path_factory.mktemp("export-seg"), {})


def test_mmseg_loads_the_export_and_predicts_as_vsynth(seg_export, tmp_path):
    import torch

    ckpt, cache, out = seg_export
    assert sorted(f.name for f in out.iterdir()) == ["export.json", "mmseg.pth", "mmseg_config.py"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["task"] == "segmentation" and manifest["source"]["weights"] == "model"  # the run kept no EMA

    run, preds = vsynth_predictions(ckpt, cache, N)
    items = run.task.eval_dataset("test").items[:N]
    arrays = tmp_path / "mmseg.npz"
    got = without_vsynth("mmseg_predict.py", {"config": str(out / "mmseg_config.py"), "checkpoint": str(out / "mmseg.pth"),
                                              "images": [str(it.image) for it in items], "arrays": str(arrays)},
                         tmp_path / "backend")
    c = run.task.classes
    assert got["dataset_meta"] == {"classes": c.names, "palette": [list(p) for p in c.palette]}
    theirs = np.load(arrays)
    # vsynth's prediction step's label maps, and the logits behind them, against mmseg's inference_model
    batch = run.task.eval_collate([run.task.eval_dataset("test")[i] for i in range(N)])
    with torch.no_grad():
        data = run.model.data_preprocessor(batch, training=False)
        logits = [r.seg_logits.data.numpy() for r in run.model.predict(data["inputs"], data["data_samples"])]
    for i, pred in enumerate(preds):
        assert pred.shape == theirs[f"labels_{i}"].shape
        assert np.array_equal(pred, theirs[f"labels_{i}"])
        np.testing.assert_allclose(theirs[f"logits_{i}"], logits[i], rtol=1e-4, atol=1e-4 * np.abs(logits[i]).max())
    reads_back_as_init(run, out / "mmseg.pth", "mmseg")


@pytest.mark.slow
def test_onnx_matches_mmseg_whole_image_forward(seg_export, tmp_path):
    """onnxruntime's logits against the model's, on a test image as OpenCV reads it (the demo's 96x64)."""
    import cv2
    import torch

    ckpt, cache, _ = seg_export
    out = onnx_export(ckpt, cache, tmp_path, "imgsz=[64,96]")
    manifest = json.loads((out / "export.json").read_text())
    assert set(manifest["onnx"]["inputs"]) == {"image"} and set(manifest["onnx"]["outputs"]) == {"logits"}
    run, preds = vsynth_predictions(ckpt, cache, 1)
    batch = run.task.eval_collate([run.task.eval_dataset("test")[0]])
    with torch.no_grad():
        data = run.model.data_preprocessor(batch, training=False)
        logits = run.model.predict(data["inputs"], data["data_samples"])[0].seg_logits.data.numpy()
    img = cv2.imread(str(run.task.eval_dataset("test").items[0].image)).transpose(2, 0, 1)[None].astype(np.float32)
    assert img.shape[2:] == (64, 96)
    (raw,) = onnx_outputs(out / "mmseg.onnx", {"image": img})
    np.testing.assert_allclose(raw[0], logits, rtol=1e-3, atol=1e-3 * np.abs(logits).max())
    assert np.array_equal(raw[0].argmax(0), preds[0])
