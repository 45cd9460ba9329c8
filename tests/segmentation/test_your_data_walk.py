"""The segmentation walk of docs/data/your-data.md ("Segmentation, step by step"), command for command, on
segmentation folders and a generated set drawn here (tests/segmentation/your_data.py): check, train real-only
and mixed, score a checkpoint alone, export it. Only the paths change (``/data/`` -> a temporary folder), plus
the toy sizes of tests/segmentation/conf/experiment/seg_tiny.yaml (but the default batch of 8, so the
page's batch composition line is the one printed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docs.walk import assert_shown, blocks, run_step, section
from tests.segmentation.conftest import seg_args
from tests.segmentation.your_data import CLASSES, PALETTE, SPLIT_SIZES, make_generated, make_seg_folders

TEXT = section("docs/data/your-data.md", "### Segmentation, step by step")
STEPS = blocks(TEXT, "bash")
SHOWN = blocks(TEXT, "text")
FAST = [*seg_args(), "trainer.batch_size=8", "trainer.threads=1"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _json(path: Path):
    return json.loads(path.read_text())


def test_the_page_shows_the_walk() -> None:
    assert [[c.split()[2:4] for c in step] for step in STEPS] == [
        [["vsynth.data", "check"]] * 4, [["vsynth", "task=segmentation"]] * 2, [["vsynth", "mode=eval"]],
        [["vsynth.export", "ckpt=outputs/myseg_mix/checkpoints/best.pt"]]]
    assert len(SHOWN) == 2


def test_check_train_eval_export(tmp_path: Path) -> None:
    make_generated(tmp_path / "mygen", make_seg_folders(tmp_path / "myseg"))
    (checks, [real_only, mixed], [evaluate], [export]) = STEPS
    printed = []
    for split, command in zip(SPLIT_SIZES, checks):
        out = run_step(command, tmp_path, tmp_path, env=ENV).stdout.splitlines()
        assert out == [f"{SPLIT_SIZES[split]} image/mask pairs, classes {CLASSES}", "ok"]
        printed += out if split == "train" else []
    printed += run_step(checks[-1], tmp_path, tmp_path, env=ENV).stdout.splitlines()
    assert printed == SHOWN[0]

    runs = {}
    for name, command in (("myseg_real", real_only), ("myseg_mix", mixed)):
        runs[name] = run_step(command, tmp_path, tmp_path, *FAST, env=ENV)
        run = tmp_path / "outputs" / name
        assert _json(run / "status.json")["state"] == "done"
        metrics = _json(run / "metrics.json")
        assert {"test/miou", "test/macc", "test/aacc", "best/val/miou"} <= set(metrics)
        assert {k for k in metrics if k.startswith("test/iou/")} == {f"test/iou/{c}" for c in CLASSES}
        assert metrics["test/num_images"] == SPLIT_SIZES["test"]
        assert _json(run / "gt_test.json")["classes"] == CLASSES
    assert_shown(SHOWN[1], runs["myseg_mix"], tmp_path)
    composition = {name: _json(tmp_path / "outputs" / name / "composition.json")["expected_per_batch"] for name in runs}
    assert composition == {"myseg_real": {"real": 8, "generated": 0}, "myseg_mix": {"real": 4, "generated": 4}}
    stats = _json(tmp_path / "outputs" / "myseg_mix" / "data_stats.json")["sources"]
    assert set(stats["generated"]["conditions"]) == {"fog", "night"} and set(stats["real"]["label_freq"]) == set(CLASSES)

    run = tmp_path / "outputs" / "myseg_mix"
    run_step(evaluate, tmp_path, tmp_path, env=ENV)  # the checkpoint's own config: nothing added
    scored = run / "eval-test"
    assert _json(scored / "status.json")["state"] == "done"
    metrics, again = _json(run / "metrics.json"), _json(scored / "metrics.json")
    for key, value in metrics.items():
        if key.startswith("test/"):
            assert again[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    assert "(its task, model, data and image size; no key edited by the command line)" in (scored / "run.log").read_text()

    proc = run_step(export, tmp_path, tmp_path, env=ENV)
    assert proc.stdout.splitlines()[0] == "Exported to outputs/myseg_mix/checkpoints/best-export"
    assert "OneDL" not in proc.stdout + proc.stderr and "MultiScaleDeformableAttention" not in proc.stderr  # import noise
    out = run / "checkpoints" / "best-export"
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "mmseg.pth", "mmseg_config.py"]
    facts = _json(out / "export.json")["facts"]
    assert facts["class_names"] == CLASSES and facts["palette"] == PALETTE
