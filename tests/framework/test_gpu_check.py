"""The GPU check (benchmarks/gpu/) on this CPU machine: it refuses to run without CUDA, its dry run
works end to end (cheapest stage here, one whole task under `slow`), deadlines hold, and the wheel
list is pinned by requirements.lock."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.gpu import check
from benchmarks.gpu.fetch_wheels import wanted

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "benchmarks" / "gpu" / "check.py"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_fails_loudly_with_one_line(tmp_path):
    p = _run("--out", str(tmp_path / "out"))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("gpu check: error: CUDA is not available to torch")
    assert "--cpu-dry-run" in p.stderr and not (tmp_path / "out").exists()


def test_dry_run_env_stage_writes_the_report(tmp_path):
    p = _run("--cpu-dry-run", "--stages", "env", "--out", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    env = report["stages"]["env"]
    assert env["state"] == "ok" and env["cuda_available"] is False
    assert {"ultralytics", "pixeltable-yolox", "onedl-mmsegmentation", "mmengine", "hydra-core"} <= set(env["versions"])
    md = (tmp_path / "gpu_check.md").read_text()
    assert "(CPU dry run)" in md and "RESULT: all stages passed" in md and md in p.stdout


def test_a_stage_past_its_deadline_is_killed_and_reported(tmp_path):
    (tmp_path / "stages").mkdir()
    rec = check.run_stage("env", 0.5, tmp_path, dry=True)
    assert rec["state"] == "timeout" and rec["seconds"] < 30 and rec["exit_code"] is None


def test_stages_that_no_longer_fit_the_budget_are_not_run(tmp_path):
    p = _run("--cpu-dry-run", "--budget", "1", "--tasks", "detection", "--out", str(tmp_path))
    assert p.returncode == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(report["stages"]) == {"env", "data:detection", "train:detection", "resume:detection",
                                      "backend:detection", "cli:detection"}
    assert {r["state"] for r in report["stages"].values()} == {"not run (budget spent)"}


def test_wheel_list_is_pinned_and_leaves_the_node_packages_alone():
    items = wanted(REPO / "benchmarks" / "gpu" / "wheels.txt", REPO / "requirements.lock")
    names = {n for n, _, _ in items}
    assert {"ultralytics", "pixeltable-yolox", "onedl-mmsegmentation", "mmcv-lite", "mmengine", "hydra-core", "omegaconf",
            "submitit", "hydra-submitit-launcher", "pycocotools", "scipy"} <= names
    assert not names & {"torch", "torchvision", "numpy", "opencv-python", "tensorboard", "pillow", "polars"}
    assert {n for n, _, build in items if build} == {"antlr4-python3-runtime", "onedl-mmsegmentation"}
    assert all(v and v[0].isdigit() for _, v, _ in items)


@pytest.mark.slow
def test_dry_run_of_one_task_end_to_end(tmp_path):
    p = _run("--cpu-dry-run", "--tasks", "segmentation", "--budget", "900", "--out", str(tmp_path), timeout=1000)
    assert p.returncode == 0, p.stdout + p.stderr
    st = json.loads((tmp_path / "gpu_check.json").read_text())["stages"]
    assert st["train:segmentation"]["bf16"]["images_per_s"] > 0
    assert st["train:segmentation"]["fp16"]["skipped"].startswith("fp16 autocast needs CUDA")
    assert st["backend:segmentation"]["bf16"]["trainer"].startswith("mmengine Runner")
    r = st["resume:segmentation"]["result"]
    assert r["resume_ok"] and r["resumed_vs_straight"]["model"]["max_abs"] == 0.0 and r["ema_ok"]
    assert st["cli:segmentation"]["exit_code"] == 0 and st["cli:segmentation"]["status"] == "done"


@pytest.mark.parametrize("dry", [True, False], ids=["dry", "gpu"])
def test_every_tasks_settings_compose(dry):
    """The check's overrides are valid config keys for each task (a renamed key fails here, not on the node)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from benchmarks.gpu.common import TASKS, plan
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for task in TASKS:
            cfg = compose("config", overrides=plan(task, dry)["overrides"])
            assert cfg.task.name == task and cfg.trainer.batch_size == plan(task, dry)["batch"]
