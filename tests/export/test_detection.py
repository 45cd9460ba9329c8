"""Detection export: a tiny run's best.pt out as YOLOX's .pth + config class (and ONNX), loaded by
pixeltable-yolox without vsynth, predicting what vsynth predicts on the same test images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.detection.helpers import DEMO_DATA, TINY
from tests.export.helpers import (match, onnx_export, onnx_outputs, reads_back_as_init, train_then_export,
                                  vsynth_predictions, without_vsynth)

# the tiny detector trained long enough (8 epochs of 4 steps) that its scores and classes vary
# with the image; at 2 epochs every anchor of a level gets the same score and class
ARGS = [*DEMO_DATA, *[a for a in TINY if not a.startswith(("trainer.length", "trainer.phases", "trainer.val",
                                                           "task.multiscale", "task.samples"))],
        "arm=base", "trainer.length=8", "trainer.phases=[{name: all, length: null}]", "trainer.val.interval=100",
        "task.multiscale.range=null", "task.samples.per_source=0", "task.samples.predictions=0",
        "trainer.optimizer.lr=0.01", "trainer.threads=1"]
N = 4
CONF = 0.001  # vsynth's eval.conf default


@pytest.fixture(scope="module")
def det_export(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(best.pt of the tiny run, the cache, its export)."""
    return train_then_export(ARGS, tmp_path_factory.mktemp("export-det"), {"PYTHONWARNINGS": "ignore"})


def test_yolox_loads_the_export_and_predicts_as_vsynth(det_export, tmp_path):
    ckpt, cache, out = det_export
    assert sorted(f.name for f in out.iterdir()) == ["export.json", "yolox.pth", "yolox_config.py"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["task"] == "detection" and manifest["facts"]["eval"]["conf"] == CONF

    run, preds = vsynth_predictions(ckpt, cache, N)
    boxes = run.task.eval_dataset("test").set
    files = [str(f) for f in boxes.files[:N]]
    got = without_vsynth("yolox_predict.py", {"export_dir": str(out), "images": files, "conf": CONF},
                         tmp_path / "backend")
    assert got["classes"] == run.task.classes == boxes.class_names
    assert got["test_size"] == list(run.task.test_size)
    ours = [{"boxes": p.boxes, "scores": p.scores, "classes": p.classes} for p in preds]
    theirs = [{"boxes": np.asarray(r["boxes"]).reshape(-1, 4), "scores": np.asarray(r["scores"]),
               "classes": np.asarray(r["classes"]).astype(int)} for r in got["images"]]
    assert all(o["scores"].max() > 20 * CONF for o in ours)  # not a flat, image-blind model
    compared = sum(match(o, t, min_score=2 * CONF, slack=CONF, box_tol=1e-3, score_tol=1e-5)
                   for o, t in zip(ours, theirs))
    assert compared >= 2 * N
    reads_back_as_init(run, out / "yolox.pth", "yolox")


@pytest.mark.slow
def test_onnx_matches_torch(det_export, tmp_path):
    """onnxruntime's raw (decoded, pre-NMS) output against the torch model's, on a letterboxed test image."""
    import torch

    ckpt, cache, _ = det_export
    out = onnx_export(ckpt, cache, tmp_path)
    manifest = json.loads((out / "export.json").read_text())
    assert set(manifest["onnx"]["inputs"]) == {"images"} and set(manifest["onnx"]["outputs"]) == {"output"}
    run, _ = vsynth_predictions(ckpt, cache, 1)
    img, _, _ = run.task.eval_dataset("test")[0]
    (raw,) = onnx_outputs(out / "yolox.onnx", {"images": img[None]})
    with torch.no_grad():
        ref = run.model(torch.from_numpy(img)[None]).numpy()
    assert raw.shape == ref.shape == (1, ref.shape[1], 5 + len(run.task.classes))
    np.testing.assert_allclose(raw, ref, rtol=1e-3, atol=1e-4 * float(np.abs(ref).max()))
