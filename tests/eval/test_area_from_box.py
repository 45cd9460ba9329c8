"""OKS on ground truth without ``area`` (CrowdPose, AIC, PoseTrack): ``--area-from-box F``.

Known answer: pycocotools on the same ground truth with the missing areas written in by hand
(box w*h*F) gives exactly vsynth's numbers on the unpatched file with ``--area-from-box F``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from vsynth.eval.__main__ import main

from .coco_reference import headline, run_cocoeval
from .coco_synth import make_coco

SIGMAS = [0.05, 0.06, 0.07, 0.08]


def _without_area(every: int) -> tuple[dict, list, dict]:
    """(GT with 'area' removed from every ``every``-th annotation, results, the hand-patched GT)."""
    gt, results = make_coco(3, n_images=30, n_keypoints=4)
    gt["categories"][0]["kpt_oks_sigmas"] = SIGMAS
    for ann in gt["annotations"][::every]:
        del ann["area"]
    patched = copy.deepcopy(gt)
    for ann in patched["annotations"]:
        if "area" not in ann:
            ann["area"] = ann["bbox"][2] * ann["bbox"][3] * 0.53
    return gt, results, patched


def _write(tmp_path: Path, gt: dict, results: list) -> tuple[str, str]:
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(results))
    return str(gt_path), str(pred_path)


@pytest.mark.parametrize("every", [1, 2])  # no annotation has an area / every other one has
def test_area_from_box_equals_pycocotools_on_hand_patched_areas(tmp_path, capsys, every) -> None:
    gt, results, patched = _without_area(every)
    gt_path, pred_path = _write(tmp_path, gt, results)
    assert main(["keypoints", "--gt", gt_path, "--pred", pred_path, "--area-from-box", "0.53"]) == 0
    ours = json.loads(capsys.readouterr().out)
    reference = headline(run_cocoeval(patched, results, "keypoints", sigmas=SIGMAS))
    assert (ours["oks_map"], ours["oks_map50"]) == reference
    assert ours["num_gt"] > 0 and 0 < ours["oks_map"] < 1
    # the factor matters: another one gives other numbers (the option is not ignored)
    assert main(["keypoints", "--gt", gt_path, "--pred", pred_path, "--area-from-box", "2.0"]) == 0
    assert json.loads(capsys.readouterr().out)["oks_map"] != ours["oks_map"]


def test_areas_that_exist_are_kept(tmp_path, capsys) -> None:
    gt, results, _ = _without_area(1)
    full, _ = make_coco(3, n_images=30, n_keypoints=4)
    full["categories"][0]["kpt_oks_sigmas"] = SIGMAS
    gt_path, pred_path = _write(tmp_path, full, results)
    assert main(["keypoints", "--gt", gt_path, "--pred", pred_path]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["keypoints", "--gt", gt_path, "--pred", pred_path, "--area-from-box", "0.53"]) == 0
    assert json.loads(capsys.readouterr().out) == plain


def test_missing_area_without_the_option_is_one_line_naming_it(tmp_path, capsys) -> None:
    gt, results, _ = _without_area(2)
    gt_path, pred_path = _write(tmp_path, gt, results)
    assert main(["keypoints", "--gt", gt_path, "--pred", pred_path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "annotations[0]: 'area' is required for OKS" in err[0] and "--area-from-box" in err[0]
    for bad in ("0", "-1", "nan"):
        assert main(["keypoints", "--gt", gt_path, "--pred", pred_path, "--area-from-box", bad]) == 2
        assert "area_from_box: expected a positive factor" in capsys.readouterr().err


def test_bootstrap_takes_the_option_too(tmp_path, capsys) -> None:
    gt, results, patched = _without_area(1)
    gt_path, pred_path = _write(tmp_path, gt, results)
    other = [dict(r, score=float(np.round(1 - r["score"], 3))) for r in results]
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    argv = ["bootstrap", "keypoints", "--gt", gt_path, "--pred-a", pred_path, "--pred-b", str(other_path),
            "--n", "20", "--area-from-box", "0.53"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["value_a"] == headline(run_cocoeval(patched, results, "keypoints", sigmas=SIGMAS))[0]
    assert out["value_b"] == headline(run_cocoeval(patched, other, "keypoints", sigmas=SIGMAS))[0]
