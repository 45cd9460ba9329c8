"""compare_runs: run folders (gt_<split>.json + predictions_<split>.json) into the two-level bootstrap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsynth.errors import DataError
from vsynth.eval.bootstrap import paired_bootstrap
from vsynth.eval.keypoints import KeypointEvaluator
from vsynth.report.run_states import compare_runs

from tests.eval.coco_synth import make_coco

SIGMAS = [0.05, 0.07, 0.04, 0.09, 0.06]


def _runs(tmp_path: Path, arm: str, pred_seeds: list[int]) -> list[Path]:
    runs = []
    for s in pred_seeds:
        gt, res = make_coco(0, n_images=50, n_keypoints=5, pred_seed=s)
        gt["categories"][0]["kpt_oks_sigmas"] = SIGMAS
        run = tmp_path / f"{arm}-seed{s}"
        run.mkdir()
        (run / "gt_test.json").write_text(json.dumps(gt))
        (run / "predictions_test.json").write_text(json.dumps(res))
        runs.append(run)
    return runs


def test_compare_runs_reads_run_folders(tmp_path: Path) -> None:
    a, b = _runs(tmp_path, "A", [1, 2, 3]), _runs(tmp_path, "B", [4, 5])
    out = compare_runs(a, b, metric="oks_map", samples=60, seed=0, gate=0.02)
    values = {name: [KeypointEvaluator.from_coco_files(r / "gt_test.json", r / "predictions_test.json").compute()["oks_map"]
                     for r in runs] for name, runs in (("A", a), ("B", b))}
    assert out["values"] == values
    assert out["delta"] == pytest.approx(np.mean(values["A"]) - np.mean(values["B"]), abs=1e-12)
    assert out["seeds"] == {"A": 3, "B": 2} and out["training_noise"] == "measured"
    assert out["runs"]["A"] == [str(r) for r in a]
    assert out["low"] < out["delta"] < out["high"] and out["power"]["mde"] > 0


def test_one_seed_each_is_the_paired_image_bootstrap(tmp_path: Path) -> None:
    a, b = _runs(tmp_path, "A", [1]), _runs(tmp_path, "B", [2])
    out = compare_runs(a, b, metric="oks_map", samples=300, seed=0, gate=None)
    ev = [KeypointEvaluator.from_coco_files(r / "gt_test.json", r / "predictions_test.json") for r in (a[0], b[0])]
    ref = paired_bootstrap(ev[0], ev[1], metric="oks_map", n=300, seed=0)
    assert out["delta"] == pytest.approx(ref["delta"], abs=1e-12)
    assert out["high"] - out["low"] == pytest.approx(ref["high"] - ref["low"], rel=0.25)
    assert out["single_seed"] == ["A", "B"]


def test_missing_files_name_the_run(tmp_path: Path) -> None:
    a = _runs(tmp_path, "A", [1])
    empty = tmp_path / "B-seed0"
    empty.mkdir()
    with pytest.raises(DataError, match="B-seed0: no gt_test.json"):
        compare_runs(a, [empty], metric="oks_map", samples=10)


def test_compare_cli(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    a, b = _runs(tmp_path, "A", [1, 2]), _runs(tmp_path, "B", [3, 4])
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "vsynth.report", "compare", "--a", *map(str, a), "--b", *map(str, b),
           "--samples", "50", "--out", str(tmp_path / "cmp.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "A - B = " in r.stdout and "Smallest detectable A - B (80% power, 0.05 two-sided)" in r.stdout
    res = json.loads((tmp_path / "cmp.json").read_text())
    assert res["seeds"] == {"A": 2, "B": 2} and res["power"]["gate"] == 0.02
    r = subprocess.run(cmd[:-2] + ["--b", str(tmp_path / "nope")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"vsynth.report: error: {tmp_path / 'nope'}: no gt_test.json + predictions_test.json (or predictions_test/ "
        "masks): the run did not save per-image test results"]
