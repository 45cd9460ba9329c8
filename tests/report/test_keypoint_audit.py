"""The keypoint audit finds an injected convention shift, and only it, and stays quiet on null data.

Ground truth: the demo world's real test frames; predictions: that ground truth plus noise, one of
them with the demo's injected shift of chosen keypoints (no training needed).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsynth.data.demo import effects_from_config
from vsynth.eval.keypoints import KeypointEvaluator
from vsynth.report.keypoint_audit import audit_states, holm, run_audit, wald_p_value
from vsynth.report.offset_arrows import magnification

from tests.conftest import REPO
from tests.report.kp_world import ground_truth, predictions

SHIFT = effects_from_config({"keypoint_shift": {"keypoints": ["front_left_wheel", "front_right_wheel"],
                                                "offset": [0.0, 0.06]}}).keypoint_shift


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audit")
    gt = ground_truth(120)
    rng = np.random.default_rng(0)
    out = {"gt": root / "gt.json", "shifted": root / "A.json", "plain": root / "B.json", "root": root}
    out["gt"].write_text(json.dumps(gt))
    out["shifted"].write_text(json.dumps(predictions(gt, rng, shift=SHIFT)))
    out["plain"].write_text(json.dumps(predictions(gt, rng)))
    return out


def test_flags_exactly_the_shifted_keypoints(files, tmp_path: Path) -> None:
    res = run_audit(files["gt"], files["shifted"], files["plain"], out_dir=tmp_path, samples=400)
    assert res["flagged"] == ["front_left_wheel", "front_right_wheel"]
    for name, kp in res["keypoints"].items():
        a, b, diff = kp["A"], kp["B"], kp["A-B"]
        if name in res["flagged"]:
            assert a["dy"]["low"] <= 0.06 <= a["dy"]["high"]  # the planted offset, in object scales
            assert diff["dy"]["low"] > 0.03 and diff["p_adjusted"] < 1e-6
            assert diff["pck"]["high"] < 0  # the metric punishes the convention shift
        else:
            assert diff["dy"]["low"] <= 0 <= diff["dy"]["high"] or diff["p_adjusted"] >= 0.05
        assert b["dy"]["low"] <= 0 <= b["dy"]["high"] or abs(b["dy"]["value"]) < 0.01
        assert a["n_matched"] == b["n_matched"] > 50
    on_disk = json.loads((tmp_path / "keypoint_audit.json").read_text())
    assert on_disk["flagged"] == res["flagged"] and on_disk["sigmas"] == res["sigmas"]
    png = (tmp_path / "keypoint_audit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_per_keypoint_figures_match_the_evaluator(files) -> None:
    """PCK per keypoint is the evaluator's own; the mean offset equals the one computed by hand."""
    ev = KeypointEvaluator.from_coco_files(files["gt"], files["shifted"])
    names = json.loads(files["gt"].read_text())["categories"][0]["keypoints"]
    res = audit_states(ev.bootstrap_state(), ev.bootstrap_state(), names, samples=20)
    per_kp = ev.compute()["per_keypoint"]
    gt = json.loads(files["gt"].read_text())
    preds = json.loads(files["shifted"].read_text())
    offsets = []
    for ann, det in zip(gt["annotations"], preds):  # one prediction per ground truth, all matched
        g, p = np.reshape(ann["keypoints"], (-1, 3)), np.reshape(det["keypoints"], (-1, 3))
        if g[0, 2] > 0:
            offsets.append((p[0, 1] - g[0, 1]) / math.sqrt(ann["area"]))
    for name in names:
        assert res["keypoints"][name]["A"]["pck"]["value"] == pytest.approx(per_kp[name]["pck"], abs=1e-12)
    assert res["keypoints"]["front_left_wheel"]["A"]["dy"]["value"] == pytest.approx(np.mean(offsets), abs=1e-9)
    assert res["flagged"] == []  # a prediction file against itself
    assert res["keypoints"]["front_left_wheel"]["A-B"]["p_value"] == 1.0


def test_null_comparisons_flag_at_about_the_nominal_rate() -> None:
    """300 null comparisons (two independent noisy copies of the truth, 60 images): about 5 % of keypoint
    tests reject at 0.05, and Holm keeps the chance of any flag in a comparison at about 5 %."""
    gt = ground_truth(60)
    names = gt["categories"][0]["keypoints"]
    rng = np.random.default_rng(1)
    raw, any_flag = [], []
    for k in range(300):
        a, b = (KeypointEvaluator.from_coco_files(gt, predictions(gt, rng)).bootstrap_state() for _ in range(2))
        res = audit_states(a, b, names, samples=200, seed=k)
        raw += [kp["A-B"]["p_value"] < 0.05 for kp in res["keypoints"].values()]
        any_flag.append(bool(res["flagged"]))
    # 4200 keypoint tests (sd of the rate ~0.004) and 300 comparisons (sd ~0.013)
    assert 0.03 <= np.mean(raw) <= 0.08
    assert 0.01 <= np.mean(any_flag) <= 0.10


def test_statistics_known_answers() -> None:
    # Holm: sorted p * (m - rank), made monotone; NaN is no test
    assert holm([0.01, 0.04, 0.03, float("nan")]) == pytest.approx([0.03, 0.06, 0.06, float("nan")], nan_ok=True)
    # Hotelling with unit covariance, many images: chi-square(2) tail exp(-T^2 / 2)
    reps = np.random.default_rng(0).standard_normal((200_000, 2))
    many = np.ones(10**6)
    assert wald_p_value(np.array([2.0, 0.0]), reps, many) == pytest.approx(math.exp(-2.0), rel=0.01)
    # 20 images of one point each: F(2, 18) * 2 * 19 / 18 (resamples hardly matter at 200,000)
    f_tail = float(__import__("scipy").stats.f.sf(4.0 * 19 / 20 * 18 / (2 * 19), 2, 18))
    assert wald_p_value(np.array([2.0, 0.0]), reps, np.ones(20)) == pytest.approx(f_tail, rel=0.02)
    assert f_tail > math.exp(-2.0) + 0.02  # wider than chi-square
    # unequal images count less: 10 images of 10 points and 10 of 1 are about 13 equal ones
    assert wald_p_value(np.array([2.0, 0.0]), reps, np.r_[np.full(10, 10.0), np.ones(10)]) > f_tail
    assert wald_p_value(np.zeros(2), np.zeros((50, 2)), np.ones(30)) == 1.0
    assert magnification(np.array([[0.01, 0.0]]), 1.0) == 10.0
    assert magnification(np.array([[0.5, 0.0]]), 1.0) == 1.0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "vsynth.report", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_writes_json_and_png_and_names_bad_files(files, tmp_path: Path) -> None:
    out = tmp_path / "audit"
    sigmas = ",".join(str(s) for s in json.loads(files["gt"].read_text())["categories"][0]["kpt_oks_sigmas"])
    r = _cli("keypoint-audit", "--gt", str(files["gt"]), "--pred", str(files["shifted"]), "--control",
             str(files["plain"]), "--sigmas", sigmas, "--samples", "200", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "front_left_wheel, front_right_wheel" in r.stdout
    res = json.loads((out / "keypoint_audit.json").read_text())
    assert res["flagged"] == ["front_left_wheel", "front_right_wheel"] and res["samples"] == 200
    assert (out / "keypoint_audit.png").is_file()

    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": [1, 2]}]')
    for args, needle in (
        (["--pred", str(bad)], "bad.json: entry 0 (image_id 1): 'keypoints' has 2 values"),
        (["--pred", str(tmp_path / "missing.json")], "missing.json: cannot read predictions"),
        (["--pred", str(files["shifted"]), "--sigmas", "0.1,0.2"], "sigmas: 2 values given"),
    ):
        r = _cli("keypoint-audit", "--gt", str(files["gt"]), "--control", str(files["plain"]), *args, cwd=tmp_path)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vsynth.report: error: ") and needle in lines[0]
    no_sigmas = tmp_path / "gt_nosigma.json"
    gt = json.loads(files["gt"].read_text())
    del gt["categories"][0]["kpt_oks_sigmas"]
    no_sigmas.write_text(json.dumps(gt))
    r = _cli("keypoint-audit", "--gt", str(no_sigmas), "--pred", str(files["shifted"]), "--control",
             str(files["plain"]), cwd=tmp_path)
    assert r.returncode == 2 and "pass --sigmas" in r.stderr
