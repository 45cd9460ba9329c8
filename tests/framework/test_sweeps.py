"""Sweeps: job folders named from overrides, rerun = resume, failures isolated, sweep report."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, tiny_args


def _sweep_root(cwd: Path) -> Path:
    roots = list((cwd / "outputs" / "sweeps").iterdir())
    assert len(roots) == 1, roots
    return roots[0]


def _rows(root: Path) -> list[dict]:
    return list(csv.DictReader(open(root / "summary.csv")))


@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_2x2_sweep_one_folder_per_job_and_report(tmp_path, launcher):
    extra = [] if launcher == "basic" else ["hydra/launcher=local", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]
    p = run_cli(["-m", *tiny_args("arm=ratio", "data.ratio=0.0,1.0", "seed=0,1", "trainer.length=1", *extra)], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    root = _sweep_root(tmp_path)
    jobs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert jobs == [f"arm=ratio,data.ratio={r},task=tiny,trainer.length=1,seed={s}" for r in ("0.0", "1.0") for s in (0, 1)]
    for j in jobs:
        assert json.loads((root / j / "status.json").read_text())["state"] == "done"
    rows = _rows(root)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert {r["per_batch"] for r in rows} == {"real=0;generated=8", "real=8;generated=0"}
    report = (root / "report.md").read_text()
    assert "## test/acc by data.ratio" in report and (root / "test_acc_by_data.ratio.png").is_file()


def test_rerunning_a_sweep_resumes_unfinished_and_skips_finished(tmp_path):
    args = ["-m", *tiny_args("arm=ratio", "data.ratio=0.5,1.0", "trainer.length=2")]
    first = run_cli(args + ["trainer.stop_at_step=4"], tmp_path)
    assert first.returncode != 0  # interrupted jobs count as failed for the scheduler
    root = _sweep_root(tmp_path)
    states = {d.name: json.loads((d / "status.json").read_text())["state"] for d in root.iterdir() if (d / "status.json").exists()}
    assert set(states.values()) == {"interrupted"}
    second = run_cli(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert _sweep_root(tmp_path) == root
    for d in (x for x in root.iterdir() if x.name in states):
        assert "Resumed from" in (d / "run.log").read_text()
        st = json.loads((d / "status.json").read_text())
        assert st["state"] == "done" and st["attempts"] == 2
    third = run_cli(args, tmp_path)
    assert third.returncode == 0 and third.stdout.count("(already done)") == 2


def test_failed_job_does_not_stop_the_others_and_is_reported(tmp_path):
    p = run_cli(["-m", *tiny_args("arm=ratio", "data.ratio=1.5,0.5", "trainer.length=1")], tmp_path)
    assert p.returncode != 0
    root = _sweep_root(tmp_path)
    rows = {r["override:data.ratio"]: r for r in _rows(root)}
    assert rows["0.5"]["status"] == "done" and float(rows["0.5"]["test/acc"]) > 0
    assert rows["1.5"]["status"] == "failed" and "data.ratio must be in [0, 1]" in rows["1.5"]["error"]
    assert "| failed |" in (root / "report.md").read_text()
    # the report command rewrites the same files on demand
    r = subprocess.run([sys.executable, "-m", "vsynth.report", str(root)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and "summary.csv" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "vsynth.report", str(tmp_path / "nope")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert bad.returncode == 2 and "no such folder" in bad.stderr


def test_ddp_two_gloo_processes_keep_exact_composition(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "vsynth",
                        *tiny_args("arm=ratio", "data.ratio=0.25", "trainer.length=2", "hydra.run.dir=ddp")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    d = tmp_path / "ddp"
    comp = json.loads((d / "composition.json").read_text())
    assert comp["world_size"] == 2 and comp["expected_per_batch"] == {"real": 2, "generated": 6}
    assert comp["batches_by_composition"] == {"6 generated + 2 real = 8 total": 2 * 5 * 2}  # both ranks
    # 88 real+generated samples -> 11 global batches -> 5 per rank; 2 epochs; both ranks counted
    assert comp["samples_per_source"] == {"real": 2 * 2 * 5 * 2, "generated": 6 * 2 * 5 * 2}
    assert json.loads((d / "status.json").read_text())["state"] == "done"
    assert not any(x.name.startswith("ddp-") for x in tmp_path.iterdir())


def test_slurm_launcher_config_composes(tmp_path):
    p = run_cli(tiny_args("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.account=proj",
                          "--cfg", "hydra"), tmp_path)
    assert p.returncode == 0, p.stderr
    for line in ["_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "partition: gpu",
                 "account: proj", "gpus_per_node: 1", "max_num_timeout: 5", "timeout_min: 720", "mem_gb: 64",
                 "cpus_per_task: 8", "signal_delay_s: 120"]:
        assert line in p.stdout, line


@pytest.mark.slow
def test_local_launcher_two_tasks_train_as_one_process_group(tmp_path):
    p = run_cli(["-m", *tiny_args("trainer.length=2", "trainer.threads=1", "hydra/launcher=local",
                                  "hydra.launcher.tasks_per_node=2", "hydra.launcher.cpus_per_task=1",
                                  "hydra.launcher.mem_gb=2")], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    (job,) = [d for d in _sweep_root(tmp_path).iterdir() if d.is_dir() and not d.name.startswith(".")]
    log = (job / "run.log").read_text()
    assert log.count("world=2)") == 1 and log.count("Done in") == 1
    assert json.loads((job / "composition.json").read_text())["world_size"] == 2
    assert len(_rows(_sweep_root(tmp_path))) == 1
