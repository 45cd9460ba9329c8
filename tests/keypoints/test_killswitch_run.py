"""The whole kill switch on a tiny demo world: base, B, A as subprocesses, then report + verdict."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.keypoints.conftest import TINY


def _run(args, cwd, cache, timeout=900):
    import os
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(VSYNTH_CACHE=str(cache), YOLO_CONFIG_DIR=str(cache / "ultralytics"))
    return subprocess.run([sys.executable, "-m", "vsynth", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_kill_switch_end_to_end(kp_cache, tmp_path):
    root = tmp_path / "ks"
    args = ["experiment=kill_switch", *TINY, "killswitch.base.overrides=['trainer.length=1']",
            "killswitch.overrides=['trainer.length=1']", "killswitch.bootstrap.samples=50", f"hydra.run.dir={root}"]
    p = _run(args, tmp_path, kp_cache)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    for arm in ("base-seed0", "B-seed0", "A-seed0"):
        st = json.loads((root / arm / "status.json").read_text())
        assert st["state"] == "done", (arm, st)
        assert (root / arm / "predictions_test.json").is_file()
    a_log = (root / "A-seed0" / "run.log").read_text()
    assert "init: " in a_log and str(root / "base-seed0" / "checkpoints" / "best.pt") in a_log  # arms start from base
    report = (root / "report.md").read_text()
    lines = [ln for ln in report.splitlines() if ln.startswith("VERDICT: ")]
    assert len(lines) == 1 and lines[0].split()[1] in ("PASS", "MARGINAL", "FAIL")
    data = json.loads((root / "killswitch.json").read_text())
    assert data["verdict"] == lines[0].split()[1]
    con = data["contribution"]
    assert con["num_images"] == 8 and con["low"] <= con["high"], con
    assert con["mean"] == pytest.approx(data["arms"]["A"]["mean"]["oks_map"] - data["arms"]["B"]["mean"]["oks_map"])
    assert "| base: base |" in report and "| B (control): B |" in report and "| A (treatment): A |" in report
    assert json.loads((root / "status.json").read_text())["state"] == "done"
    # rerunning reuses the finished arms (nothing retrained) and writes the same verdict
    p2 = _run(args, tmp_path, kp_cache)
    assert p2.returncode == 0, p2.stderr[-3000:]
    assert "already done" in (root / "run.log").read_text()
    assert json.loads((root / "killswitch.json").read_text())["verdict"] == data["verdict"]


@pytest.mark.slow
def test_kill_switch_with_given_baseline_and_reused_control(kp_cache, tmp_path):
    # a finished control run to reuse
    b_dir = tmp_path / "B-prior"
    p = run_cli([*TINY, "arm=B", f"hydra.run.dir={b_dir}"], tmp_path,
                env={"VSYNTH_CACHE": str(kp_cache), "YOLO_CONFIG_DIR": str(kp_cache / "ultralytics")})
    assert p.returncode == 0, p.stderr[-3000:]
    root = tmp_path / "ks2"
    args = ["experiment=kill_switch", *TINY, "killswitch.base.metrics={oks_map: 0.2199, oks_map50: 0.35, pck@0.05: 0.496}",
            f"+killswitch.reuse.B={b_dir}", "killswitch.overrides=['trainer.length=1']",
            "killswitch.bootstrap.samples=20", f"hydra.run.dir={root}"]
    p = _run(args, tmp_path, kp_cache)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert not (root / "base-seed0").exists() and not (root / "B-seed0").exists()
    data = json.loads((root / "killswitch.json").read_text())
    assert data["arms"]["base"]["measured"] is False and data["arms"]["base"]["mean"]["oks_map"] == 0.2199
    assert data["arms"]["B"]["runs"] == [str(b_dir.resolve())]
    assert data["verdict"] == "FAIL"  # a barely trained demo model is far below 0.2199
    assert any("not measured in this experiment" in n for n in data["notes"])
