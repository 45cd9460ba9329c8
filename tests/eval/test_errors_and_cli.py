"""Bad input gives one line naming the file and the entry; the CLI prints one JSON object."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsynth.errors import DataError
from vsynth.eval.__main__ import main
from vsynth.eval.detection import DetectionEvaluator
from vsynth.eval.keypoints import KeypointEvaluator

from .coco_synth import make_coco

REPO = Path(__file__).resolve().parents[2]
SIGMAS = "0.05,0.06,0.07,0.08"


@pytest.fixture
def keypoint_files(tmp_path: Path) -> tuple[Path, Path, dict, list]:
    gt, results = make_coco(0, n_images=20, n_keypoints=4)
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(results))
    return gt_path, pred_path, gt, results


def _cli_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("vsynth.eval: error: ")
    return lines[0]


def _with_bad_entry(tmp_path: Path, results: list, index: int, **changes) -> Path:
    bad = [dict(r) for r in results]
    bad[index].update(changes)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))  # json writes NaN as NaN, which json.load accepts
    return path


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"image_id": 999999999}, "image_id 999999999 is not in the ground truth"),
        ({"category_id": 7}, "category_id 7 is not in the ground truth categories [1]"),
        ({"keypoints": [1.0] * 15}, "'keypoints' has 15 values, expected 3 * 4 = 12"),
        ({"keypoints": [1.0] * 4 + [float("nan")] + [1.0] * 7}, "'keypoints' value 4 is nan, expected a finite number"),
        ({"score": float("nan")}, "'score' must be a finite number, got nan"),
        ({"score": "high"}, "'score' must be a finite number, got 'high'"),
    ],
)
def test_bad_keypoint_results_name_file_and_entry(tmp_path, capsys, keypoint_files, change, problem) -> None:
    gt_path, _, _, results = keypoint_files
    bad = _with_bad_entry(tmp_path, results, 3, **change)
    line = _cli_error(capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(bad), "--sigmas", SIGMAS])
    assert line.startswith(f"vsynth.eval: error: {bad}: entry 3 (image_id ")
    assert problem in line.split(": entry 3 ", 1)[1]


def test_bad_detection_results_and_ground_truth(tmp_path, capsys) -> None:
    gt, results = make_coco(1, n_images=10, keypoints=False)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    bad = _with_bad_entry(tmp_path, results, 0, bbox=[1, 2, 3])
    line = _cli_error(capsys, ["detection", "--gt", str(gt_path), "--pred", str(bad)])
    assert line.endswith(f"{bad}: entry 0 (image_id {results[0]['image_id']}): 'bbox' has 3 values, expected 4")

    broken = json.loads(json.dumps(gt))
    broken["annotations"][2]["bbox"] = [0, 0, -1, 5]
    gt_path.write_text(json.dumps(broken))
    line = _cli_error(capsys, ["detection", "--gt", str(gt_path), "--pred", str(bad)])
    assert f"{gt_path}: annotations[2] (id {broken['annotations'][2]['id']}): 'bbox' must be" in line


def test_file_level_errors(tmp_path, capsys, keypoint_files) -> None:
    gt_path, pred_path, _, _ = keypoint_files
    missing = tmp_path / "nope.json"
    assert f"{missing}: cannot read predictions" in _cli_error(
        capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(missing), "--sigmas", SIGMAS]
    )
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[{]")
    assert f"{garbage}: line 1: not valid JSON" in _cli_error(
        capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(garbage), "--sigmas", SIGMAS]
    )
    as_dict = tmp_path / "dict.json"
    as_dict.write_text("{}")
    assert f"{as_dict}: top level: expected a list of result entries" in _cli_error(
        capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(as_dict), "--sigmas", SIGMAS]
    )
    assert "pass --sigmas with 4 values" in _cli_error(capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(pred_path)])
    assert "--sigmas: expected comma-separated numbers" in _cli_error(
        capsys, ["keypoints", "--gt", str(gt_path), "--pred", str(pred_path), "--sigmas", "a,b"]
    )


def test_empty_prediction_file_is_valid(tmp_path, capsys, keypoint_files) -> None:
    gt_path, _, _, _ = keypoint_files
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["keypoints", "--gt", str(gt_path), "--pred", str(empty), "--sigmas", SIGMAS]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["oks_map"] == 0.0 and out["oks_map50"] == 0.0 and out["pck@0.05"] == 0.0


def test_keypoints_cli_output_matches_api(tmp_path, capsys, keypoint_files) -> None:
    gt_path, pred_path, gt, results = keypoint_files
    out_file = tmp_path / "sub" / "metrics.json"
    argv = ["keypoints", "--gt", str(gt_path), "--pred", str(pred_path), "--sigmas", SIGMAS, "--pck", "0.1",
            "--out", str(out_file)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out_file.read_text()) == printed
    api = KeypointEvaluator.from_coco_files(gt, results, sigmas=[0.05, 0.06, 0.07, 0.08], pck_alpha=0.1).compute()
    assert printed["oks_map"] == api["oks_map"] and printed["pck@0.1"] == api["pck@0.1"]
    assert set(printed["per_keypoint"]["kp0"]) == {"oks", "pck"}


def test_detection_cli_writes_null_for_undefined(tmp_path, capsys) -> None:
    gt, results = make_coco(2, n_images=15, n_cats=2, keypoints=False)
    gt["categories"].append({"id": 3, "name": "absent"})
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(results))
    assert main(["detection", "--gt", str(gt_path), "--pred", str(pred_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["per_class_ap"]["absent"] is None
    assert printed["ap"] == DetectionEvaluator.from_coco_files(gt, results).compute()["ap"]
    assert {"ap", "ap50", "ap75", "ar100", "per_class_ap"} <= set(printed)


def _write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array.astype(np.uint8)).save(path)


def test_segmentation_cli_and_mismatched_sizes(tmp_path, capsys) -> None:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        g = rng.integers(0, 3, size=(6, 7))
        g[0, 0] = 255
        _write_png(gt_dir / f"img{i}.png", g)
        np.save(pred_dir / f"img{i}.npy", np.where(rng.random(g.shape) < 0.7, g % 255, 1))
    argv = ["segmentation", "--gt-dir", str(gt_dir), "--pred-dir", str(pred_dir), "--num-classes", "3",
            "--class-names", "road,car,sky"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["iou"]) == {"road", "car", "sky"} and 0 < printed["miou"] <= 1

    np.save(pred_dir / "img1.npy", np.zeros((6, 8), dtype=np.int64))
    line = _cli_error(capsys, argv)
    assert line == (
        f"vsynth.eval: error: {pred_dir / 'img1.npy'}: prediction shape (6, 8) differs from ground-truth shape (6, 7)"
    )
    (pred_dir / "img1.npy").unlink()
    assert _cli_error(capsys, argv) == f"vsynth.eval: error: {pred_dir}: no prediction for ground truth img1.png"


def test_bootstrap_cli(tmp_path, capsys, keypoint_files) -> None:
    gt_path, pred_path, gt, _ = keypoint_files
    _, other = make_coco(0, n_images=20, n_keypoints=4, pred_seed=3)
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    argv = ["bootstrap", "keypoints", "--gt", str(gt_path), "--pred-a", str(pred_path), "--pred-b", str(other_path),
            "--sigmas", SIGMAS, "--n", "50", "--metric", "oks_map50"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metric"] == "oks_map50" and printed["n"] == 50
    assert printed["low"] <= printed["delta"] <= printed["high"]
    assert math.isclose(printed["delta"], printed["value_a"] - printed["value_b"])


def test_streaming_errors_name_the_image() -> None:
    evaluator = KeypointEvaluator([0.05, 0.05])
    good_target = {"keypoints": np.ones((1, 2, 3)), "boxes": [[0, 0, 5, 5]], "areas": [25.0]}
    with pytest.raises(DataError, match=r"update\(\): image 7: pred 'keypoints' has shape \(1, 3, 3\), expected \(N, 2, 2\) or \(N, 2, 3\)"):
        evaluator.update([7], [good_target], [{"keypoints": np.ones((1, 3, 3)), "scores": [0.5]}])
    with pytest.raises(DataError, match=r"update\(\): image 7: pred 'scores' has a non-finite value at index \(0,\)"):
        evaluator.update([7], [good_target], [{"keypoints": np.ones((1, 2, 3)), "scores": [float("nan")]}])
    with pytest.raises(DataError, match=r"update\(\): image 7: pred 'labels' has unknown category id 5"):
        evaluator.update([7], [good_target], [{"keypoints": np.ones((1, 2, 3)), "scores": [0.5], "labels": [5]}])
    evaluator.update([7], [good_target], [{"keypoints": np.ones((1, 2, 3)), "scores": [0.5]}])
    with pytest.raises(DataError, match="image id 7 was added twice"):
        evaluator.update([7], [good_target], [{"keypoints": np.ones((1, 2, 3)), "scores": [0.5]}])
    boxes = DetectionEvaluator(["a", "b"])
    with pytest.raises(DataError, match=r"update\(\): image 'x': target has no 'labels'"):
        boxes.update(["x"], [{"boxes": [[0, 0, 1, 1]]}], [{"boxes": [], "scores": [], "labels": []}])


def test_module_entry_point_exit_code(tmp_path, keypoint_files) -> None:
    gt_path, _, _, results = keypoint_files
    bad = _with_bad_entry(tmp_path, results, 1, category_id=42)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "vsynth.eval", "keypoints", "--gt", str(gt_path), "--pred", str(bad), "--sigmas", SIGMAS],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().startswith(f"vsynth.eval: error: {bad}: entry 1 (image_id ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_file_to_number_imports_no_torch(tmp_path, keypoint_files) -> None:
    """Start-up counts in file-to-number time: the evaluators' CLI never imports torch or a backend."""
    gt_path, pred_path, _, _ = keypoint_files
    code = (
        "import sys, runpy; sys.argv = ['vsynth.eval', 'keypoints', '--gt', sys.argv[1], '--pred', sys.argv[2], "
        f"'--sigmas', '{SIGMAS}', '--out', sys.argv[3]]\n"
        "try:\n    runpy.run_module('vsynth.eval', run_name='__main__')\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('HEAVY', [m for m in ('torch', 'ultralytics', 'yolox', 'mmseg', 'cv2') if m in sys.modules])"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, str(gt_path), str(pred_path), str(tmp_path / "out.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY []"
    assert json.loads((tmp_path / "out.json").read_text())["num_images"] == 20
