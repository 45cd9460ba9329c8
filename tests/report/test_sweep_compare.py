"""Sweep reports compare every arm with a reference arm on the runs' per-image test files.

A fake sweep of finished keypoint jobs (arm x seed, plus a swept subset size): arm A predicts the
keypoints within 1 px, B and base within 4 px (base is B's twin). Every arm's delta vs B comes with
a two-level interval, the variance shares and the MDE; A's interval excludes 0, base's holds it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, cli_env
from vsynth.errors import ConfigError
from vsynth.report.sweep import write_sweep_report
from vsynth.report.sweep_compare import reference_arm

NOISE = {"A": 1.0, "B": 4.0, "base": 4.0}
K = 5


def _gt(n_images: int = 60) -> dict:
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 320, "height": 240})
        x, y = rng.uniform(40, 200), rng.uniform(40, 140)
        kp = [[x + 12 * k, y + 6 * (k % 2), 2] for k in range(K)]
        anns.append({"id": i + 1, "image_id": i, "category_id": 1, "bbox": [x - 5, y - 5, 70, 20], "area": 900.0,
                     "iscrowd": 0, "keypoints": [v for p in kp for v in p], "num_keypoints": K})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "car", "keypoints": [f"p{k}" for k in range(K)],
                            "kpt_oks_sigmas": [0.05] * K}]}


def _job(root: Path, gt: dict, arm: str, seed: int, subset: int, files: bool = True) -> None:
    job = root / f"arm={arm},data.real_subset={subset},seed={seed}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"arm={arm}", f"data.real_subset={subset}",
                                                                  f"seed={seed}"]))
    (job / "status.json").write_text(json.dumps({"state": "done", "seed": seed}))
    rng = np.random.default_rng([seed, subset, len(arm), ord(arm[0])])
    preds = []
    for a in gt["annotations"]:
        kp = np.array(a["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, NOISE[arm], (K, 2))
        kp[:, 2] = 1.0
        preds.append({"image_id": a["image_id"], "category_id": 1, "score": 0.9, "bbox": a["bbox"],
                      "keypoints": kp.ravel().tolist()})
    if files:
        (job / "gt_test.json").write_text(json.dumps(gt))
        (job / "predictions_test.json").write_text(json.dumps(preds))
    from vsynth.eval.keypoints import KeypointEvaluator

    ev = KeypointEvaluator.from_coco_files(gt, job / "predictions_test.json") if files else None
    value = ev.compute()["oks_map"] if ev else 0.5
    (job / "metrics.json").write_text(json.dumps({"test/oks_map": value}))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    gt = _gt()
    for arm in NOISE:
        for seed in (0, 1):
            _job(tmp_path, gt, arm, seed, 24)
    return tmp_path


def test_every_arm_vs_the_control_with_a_two_level_interval(sweep: Path) -> None:
    report = write_sweep_report(sweep, options={"samples": 200}).read_text()
    result = json.loads((sweep / "comparisons.json").read_text())
    (group,) = result["groups"]
    assert group["reference"] == "B" and group["group"] == []  # the subset is not swept: one group
    by_arm = {c["arm"]: c for c in group["comparisons"]}
    assert set(by_arm) == {"A", "base"}
    a, base = by_arm["A"], by_arm["base"]
    assert a["low"] > 0 and a["seeds"] == {"A": 2, "B": 2} and a["num_images"] == 60
    assert base["low"] <= 0 <= base["high"]
    for c in (a, base):
        assert c["variance"]["seed_share"] is not None and c["power"]["mde"] > 0 and c["training_noise"] == "measured"
    assert "## Every arm vs B" in report and "| oks_map | A | 2 vs 2 |" in report and "MDE" in report
    assert "## test/oks_map by arm" in report  # the plain t intervals over seeds stay
    rows = list(csv.DictReader(open(sweep / "comparisons.csv")))
    assert [(r["arm"], r["reference"], r["metric"]) for r in rows] == [("A", "B", "oks_map"), ("base", "B", "oks_map")]
    assert float(rows[0]["delta"]) == pytest.approx(a["delta"]) and rows[0]["mde"]


def test_groups_reference_and_runs_without_per_image_files(tmp_path: Path) -> None:
    gt = _gt(30)
    for arm in ("A", "base"):
        for seed in (0, 1):
            _job(tmp_path, gt, arm, seed, 24)
            _job(tmp_path, gt, arm, seed, 48, files=arm != "A")
    write_sweep_report(tmp_path, options={"samples": 50})
    result = json.loads((tmp_path / "comparisons.json").read_text())
    groups = {tuple(g["group"]): g for g in result["groups"]}
    assert set(groups) == {("data.real_subset=24",), ("data.real_subset=48",)}
    assert all(g["reference"] == "A" for g in groups.values())  # no B: the first arm
    assert groups[("data.real_subset=24",)]["comparisons"][0]["low"] is not None
    missing = groups[("data.real_subset=48",)]["comparisons"][0]
    assert missing.get("low") is None and "did not save per-image test results" in missing["reason"]
    assert "no interval: " in (tmp_path / "report.md").read_text()
    write_sweep_report(tmp_path, options={"samples": 50, "reference": "base"})
    assert json.loads((tmp_path / "comparisons.json").read_text())["groups"][0]["reference"] == "base"
    with pytest.raises(ConfigError, match="--reference C: not an arm of this sweep"):
        reference_arm(["A", "B"], "C")


def test_no_per_image_files_no_comparisons(tmp_path: Path) -> None:
    gt = _gt(10)
    for arm in ("A", "B"):
        _job(tmp_path, gt, arm, 0, 24, files=False)
    report = write_sweep_report(tmp_path).read_text()
    assert not (tmp_path / "comparisons.csv").exists() and "Every arm vs" not in report
    assert "## test/oks_map by arm" in report


def test_report_command_options(sweep: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vsynth.report", str(sweep), *args], capture_output=True, text=True,
                              env=cli_env(sweep), cwd=REPO, timeout=300)

    p = cli("--samples", "20", "--reference", "base")
    assert p.returncode == 0, p.stderr
    assert "Arm comparisons:" in p.stdout
    assert json.loads((sweep / "comparisons.json").read_text())["groups"][0]["reference"] == "base"
    bad = cli("--reference", "C")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "vsynth.report: error: --reference C: not an arm of this sweep (arms: A, B, base)")
