"""Few-step CLI runs of every arm (tiny demo world, imgsz 128) and mode=eval on the result."""

import json
from pathlib import Path

import pytest

from tests.keypoints.conftest import status

KEYS = ["val/oks_map", "test/oks_map", "test/oks_map50", "test/pck@0.05", "test/box_map50", "test/per_keypoint",
        "best/val/oks_map"]


def _check_run_folder(rd: Path, sources: list[str]) -> dict:
    st = status(rd)
    assert st["state"] == "done", st
    metrics = json.loads((rd / "metrics.json").read_text())
    history = [json.loads(ln) for ln in (rd / "metrics.jsonl").read_text().splitlines()]
    assert "val/oks_map" in history[-1]
    metrics["val/oks_map"] = history[-1]["val/oks_map"]
    for k in KEYS:
        assert k in metrics, (k, sorted(metrics))
    assert set(metrics["test/per_keypoint"]) >= {"front_left_wheel", "front_center"}
    for f in ["checkpoints/best.pt", "checkpoints/last.pt", "samples/train_batch_0.png", "samples/pred_test.png",
              "gt_test.json", "predictions_test.json", "composition.json", "report.md"]:
        assert (rd / f).is_file(), f
    for s in sources:
        assert (rd / "samples" / f"train_{s}.png").is_file(), s
    gt = json.loads((rd / "gt_test.json").read_text())
    assert gt["categories"][0]["kpt_oks_sigmas"] and len(gt["categories"][0]["keypoints"]) == 14
    comp = json.loads((rd / "composition.json").read_text())
    assert set(comp["samples_per_source"]) == set(sources)
    log = (rd / "run.log").read_text()
    assert "flip pair 0 <-> 1: front_left_wheel <-> front_right_wheel" in log
    init = next(ln for ln in log.splitlines() if "init: " in ln)  # the demo's pretrained model ...
    n, total = (int(x) for x in init.split("init: ")[1].split(" tensors")[0].split("/"))
    assert "data.demo.init" in init and total - n == 6, init  # ... all but its keypoint output layer
    return metrics


@pytest.fixture(scope="module")
def arm_b_run(kp_cache, tmp_path_factory):
    from tests.conftest import run_cli
    from tests.keypoints.conftest import TINY

    rd = tmp_path_factory.mktemp("armB") / "run"
    p = run_cli([*TINY, "arm=B", f"hydra.run.dir={rd}"], rd.parent,
                env={"VSYNTH_CACHE": str(kp_cache), "YOLO_CONFIG_DIR": str(kp_cache / "ultralytics")})
    assert p.returncode == 0, p.stderr[-3000:]
    return rd


def test_arm_b_run_folder(arm_b_run):
    m = _check_run_folder(arm_b_run, ["real"])
    comp = json.loads((arm_b_run / "composition.json").read_text())
    assert comp["samples_per_source"] == {"real": 32}  # 4 real x8, one epoch


@pytest.mark.parametrize("arm, sources", [("A", ["real", "synthetic"]), ("base", ["real"]),
                                          ("synth_only", ["synthetic"])])
def test_arm_run_folder(kp_cli, arm, sources):
    p, rd = kp_cli(f"arm={arm}")
    assert p.returncode == 0, p.stderr[-3000:]
    m = _check_run_folder(rd, sources)
    if arm == "synth_only":  # scored in-domain, on held-out synthetic frames
        gt = json.loads((rd / "gt_test.json").read_text())
        assert "synthetic" in gt["info"]["description"]


def test_eval_mode_reproduces_the_test_metrics(kp_cli, arm_b_run):
    trained = json.loads((arm_b_run / "metrics.json").read_text())
    p, rd = kp_cli("arm=B", "mode=eval", f"ckpt={arm_b_run / 'checkpoints' / 'best.pt'}")
    assert p.returncode == 0, p.stderr[-3000:]
    ev = json.loads((rd / "metrics.json").read_text())
    for k in ("test/oks_map", "test/oks_map50", "test/pck@0.05", "test/box_map50"):
        assert ev[k] == pytest.approx(trained[k], abs=1e-9), k
    assert (rd / "predictions_test.json").read_text() == (arm_b_run / "predictions_test.json").read_text()


def test_predictions_file_rescores_to_the_same_metrics(arm_b_run):
    from vsynth.eval.keypoints import KeypointEvaluator

    trained = json.loads((arm_b_run / "metrics.json").read_text())
    ev = KeypointEvaluator.from_coco_files(arm_b_run / "gt_test.json", arm_b_run / "predictions_test.json")
    m = ev.compute()
    assert m["oks_map"] == pytest.approx(trained["test/oks_map"], abs=1e-12)
    assert m["pck@0.05"] == pytest.approx(trained["test/pck@0.05"], abs=1e-12)


def test_second_run_in_the_same_folder_is_not_retrained(kp_cli, arm_b_run):
    p, _ = kp_cli("arm=B", run_dir=arm_b_run)
    assert p.returncode == 0 and "already done" in p.stdout


def test_eval_from_the_checkpoint_alone(kp_cache, arm_b_run, tmp_path):
    """``python -m vsynth mode=eval ckpt=PATH``: the checkpoint carries its task, model, data and image size."""
    from tests.conftest import run_cli

    trained = json.loads((arm_b_run / "metrics.json").read_text())
    rd = tmp_path / "alone"
    p = run_cli(["mode=eval", f"ckpt={arm_b_run / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={rd}"], tmp_path,
                env={"VSYNTH_CACHE": str(kp_cache), "YOLO_CONFIG_DIR": str(kp_cache / "ultralytics")})
    assert p.returncode == 0, p.stderr[-3000:]
    ev = json.loads((rd / "metrics.json").read_text())
    for k in ("test/oks_map", "test/oks_map50", "test/pck@0.05", "test/box_map50"):
        assert ev[k] == pytest.approx(trained[k], abs=1e-9), k
    assert "scoring with the config of the keypoints run that wrote" in (rd / "run.log").read_text()


def test_resume_mid_epoch_is_exact(kp_cli, tmp_path):
    """Stopped mid-epoch and resumed, the run ends with the same weights as one that never stopped
    (ultralytics' mosaic partners must not depend on what the process loaded before)."""
    import torch

    p, straight = kp_cli("arm=B", "trainer.length=2", run_dir=tmp_path / "straight")
    assert p.returncode == 0, p.stderr[-3000:]
    p, resumed = kp_cli("arm=B", "trainer.length=2", "trainer.stop_at_step=2", run_dir=tmp_path / "resumed")
    assert p.returncode == 3, p.stderr[-3000:]
    p, _ = kp_cli("arm=B", "trainer.length=2", run_dir=resumed)
    assert p.returncode == 0, p.stderr[-3000:]
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] and a["step"] > 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
