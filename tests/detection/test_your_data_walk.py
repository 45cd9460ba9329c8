"""The detection walk of docs/data/your-data.md ("Detection, step by step"), command for command, on a small
COCO detection dataset drawn here (tests/detection/your_data.py): check the three files, train, score the
checkpoint alone, export it; then the synthetic arm. Only the paths change (``/data/`` -> a temporary
folder), plus settings that make training take seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.detection.helpers import TINY
from tests.detection.your_data import CATEGORIES, CLASSES, SPLIT_SIZES, make_coco_detection
from tests.docs.walk import assert_shown, blocks, run_step, section

TEXT = section("docs/data/your-data.md", "### Detection, step by step")
STEPS = blocks(TEXT, "bash")
SHOWN = blocks(TEXT, "text")
FAST = [a for a in TINY if a != "task=detection"] + ["trainer.threads=1", "trainer.progress_bar=false",
                                                      "trainer.tensorboard=false"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _json(path: Path):
    return json.loads(path.read_text())


def test_the_page_shows_the_walk() -> None:
    assert [[c.split()[2:4] for c in step] for step in STEPS] == [
        [["vsynth.data", "check"]] * 3, [["vsynth", "task=detection"]], [["vsynth", "mode=eval"]],
        [["vsynth.export", "ckpt=outputs/mydet/checkpoints/best.pt"]], [["vsynth", "task=detection"]]]
    assert len(SHOWN) == 2


def test_check_train_eval_export(tmp_path: Path) -> None:
    make_coco_detection(tmp_path / "mydet")
    (checks, [train], [evaluate], [export], _) = STEPS
    for split, command in zip(SPLIT_SIZES, checks):
        out = run_step(command, tmp_path, tmp_path, env=ENV).stdout.splitlines()
        n = SPLIT_SIZES[split]
        assert out == [f"{n} images, {2 * n} boxes, classes {CLASSES} (by category id, the training order)", "ok"]
        if split == "train":
            assert SHOWN[0] == out

    proc = run_step(train, tmp_path, tmp_path, *FAST, env=ENV)
    assert_shown(SHOWN[1], proc, tmp_path)
    run = tmp_path / "outputs" / "mydet"
    assert _json(run / "status.json")["state"] == "done"
    metrics = _json(run / "metrics.json")
    assert {"test/ap", "test/ap50", "test/ap75", "test/ar100", "best/val/ap"} <= set(metrics)
    assert {k for k in metrics if k.startswith("test/ap_class/")} == {f"test/ap_class/{c}" for c in CLASSES}
    assert metrics["test/num_images"] == SPLIT_SIZES["test"] and metrics["test/num_gt"] == 2 * SPLIT_SIZES["test"]
    gt = _json(run / "gt_test.json")  # the file's own category ids, ordered by id
    assert [(c["id"], c["name"]) for c in gt["categories"]] == sorted(CATEGORIES)
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "samples" / "pred_test.png").is_file()

    run_step(evaluate, tmp_path, tmp_path, env=ENV)  # the checkpoint's own config: nothing added
    scored = run / "eval-test"
    assert _json(scored / "status.json")["state"] == "done"
    again = _json(scored / "metrics.json")
    for key, value in metrics.items():
        if key.startswith("test/"):
            assert again[key] == pytest.approx(value, abs=1e-9), key
    assert "(its task, model, data and image size; no key edited by the command line)" in (scored / "run.log").read_text()

    proc = run_step(export, tmp_path, tmp_path, env=ENV)
    assert proc.stdout.splitlines()[0] == "Exported to outputs/mydet/checkpoints/best-export"
    out = run / "checkpoints" / "best-export"
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "yolox.pth", "yolox_config.py"]
    assert _json(out / "export.json")["facts"]["class_names"] == CLASSES
    assert f"CLASSES = {tuple(CLASSES)}" in (out / "yolox_config.py").read_text()


def test_synthetic_arm(tmp_path: Path) -> None:
    make_coco_detection(tmp_path / "mydet")
    make_coco_detection(tmp_path / "mysynth", seed=1, splits={"train": 8})
    [arm_a] = STEPS[-1]
    run_step(arm_a, tmp_path, tmp_path, *FAST, "data.real_subset=4", env=ENV)  # the data has 8 real train images
    run = tmp_path / "outputs" / "mydet_A"
    assert _json(run / "status.json")["state"] == "done"
    log = (run / "run.log").read_text()
    assert "real: 4 of 8 train images drawn with data.subset_seed=0" in log
    assert "Epoch composition: real 4 x8 = 32 + synthetic 8 x1 = 8" in log
    assert (run / "data" / "real_train_subset4.txt").is_file()
    assert {k for k in _json(run / "metrics.json") if k.startswith("test/ap_class/")} == {f"test/ap_class/{c}" for c in CLASSES}
    # the control, "the same command with arm=B": the same subset, and the synthetic keys it leaves unread are named
    arm_b = arm_a.replace("arm=A", "arm=B").replace("mydet_A", "mydet_B")
    proc = run_step(arm_b, tmp_path, tmp_path, *FAST, "data.real_subset=4", env=ENV)
    control = tmp_path / "outputs" / "mydet_B"
    assert _json(control / "status.json")["state"] == "done"
    assert (control / "data" / "real_train_subset4.txt").read_text() == (run / "data" / "real_train_subset4.txt").read_text()
    warning = ("data.synthetic.train.coco, data.synthetic.train.images: set on the command line, but arm=B does not "
               "train on source 'synthetic' (its sources: real); not read")
    assert warning in (control / "run.log").read_text() and warning in proc.stdout + proc.stderr
