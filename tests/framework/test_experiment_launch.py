"""An experiment's runs through the configured launcher: the kill switch on the tiny task.

With ``hydra/launcher=local`` every run of a stage is a submitit job (B and A at once), each a
complete run folder under the experiment root; the verdict and report are written once all are
done, and rerunning the command skips the finished runs.
"""

from __future__ import annotations

import json

from tests.conftest import run_cli, tiny_args

KS = ("experiment=kill_switch", "killswitch.metric=acc", "killswitch.metrics=[acc]", "killswitch.margin=0.0",
      "killswitch.base.overrides=['trainer.length=1']", "killswitch.overrides=['trainer.length=1']",
      "trainer.threads=1")


def test_kill_switch_through_the_local_launcher(tmp_path):
    root = tmp_path / "ks"
    args = tiny_args(*KS, "hydra/launcher=local", "hydra.launcher.cpus_per_task=1", f"hydra.run.dir={root}")
    p = run_cli(args, tmp_path, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    for run in ("base-seed0", "B-seed0", "A-seed0"):
        st = json.loads((root / run / "status.json").read_text())
        assert st["state"] == "done" and (root / run / ".hydra" / "config.yaml").is_file(), run
    assert (root / ".submitit").is_dir()  # they ran as submitit jobs
    log = (root / "run.log").read_text()
    assert "job of hydra/launcher=local" in log
    data = json.loads((root / "killswitch.json").read_text())
    assert data["verdict"] in ("PASS", "MARGINAL", "FAIL") and data["metric"] == "acc"
    assert (root / "report.md").read_text().rstrip().endswith(data["verdict_line"])  # not a sweep report
    p = run_cli(args, tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    for run in ("base-seed0", "B-seed0", "A-seed0"):
        assert json.loads((root / run / "status.json").read_text())["attempts"] == 1  # not run again
