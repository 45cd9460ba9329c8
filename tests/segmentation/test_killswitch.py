"""The ratio kill switch on the toy segmentation task: base, real-only and 1:1 real:generated, then the verdict."""

from __future__ import annotations

import pytest

from tests.segmentation.conftest import read_json, seg_args


@pytest.mark.slow
def test_ratio_kill_switch_end_to_end(seg_cli, tmp_path):
    root = tmp_path / "ks"
    p = seg_cli(*seg_args(f"hydra.run.dir={root}", experiment="seg_tiny_killswitch"), timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    runs = {"base": root / "base-seed0", "real-only": root / "real-only-seed0", "ratio0.5": root / "ratio0.5-seed0"}
    for name, d in runs.items():
        assert read_json(d / "status.json")["state"] == "done", name
        assert (d / "gt_test.json").is_file() and (d / "predictions_test").is_dir(), name
    # the roles' overrides reached their runs: real-only batches vs 2 real + 2 generated
    assert read_json(runs["real-only"] / "composition.json")["expected_per_batch"] == {"real": 4, "generated": 0}
    assert read_json(runs["ratio0.5"] / "composition.json")["expected_per_batch"] == {"real": 2, "generated": 2}
    assert str(runs["base"] / "checkpoints" / "best.pt") in (runs["ratio0.5"] / "run.log").read_text()
    data = read_json(root / "killswitch.json")
    assert data["names"] == {"base": "base", "B": "real-only", "A": "ratio0.5"}
    assert data["metric"] == "miou" and data["contribution"]["num_images"] == 4
    report = (root / "report.md").read_text()
    assert "| miou | aacc | macc |" in report and "| B (control): real-only |" in report
    verdict = [ln for ln in report.splitlines() if ln.startswith("VERDICT: ")]
    assert len(verdict) == 1 and verdict[0].split()[1] == data["verdict"]
