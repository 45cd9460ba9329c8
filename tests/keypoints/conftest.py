"""Shared fixtures of the keypoints tests: a tiny demo world and tiny CLI runs.

Every run uses a 160x128 demo world with a handful of frames, imgsz 128 and a few steps, so an
arm trains, evaluates and writes its run folder in well under a minute on a CPU. The demo world
is generated once per test session into a shared cache (``VSYNTH_CACHE``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli

TINY = [
    "task=keypoints",
    "data.demo.counts.real={train: 16, val: 6, test: 8}",
    "data.demo.counts.synthetic={train: 12, val: 4, test: 4}",
    "data.demo.image_size=[160,128]",
    "data.real_subset=4",
    "task.imgsz=128",
    "task.samples.per_source=2",
    "task.samples.predictions=2",
    "eval.batch=8",
    "trainer.length=1",
    "trainer.batch_size=8",
    "trainer.workers=0",
    "trainer.progress_bar=false",
    "trainer.tensorboard=false",
]


@pytest.fixture(scope="session")
def kp_cache(tmp_path_factory) -> Path:
    """One demo cache for the whole session (``VSYNTH_CACHE``); also a project-local ultralytics dir."""
    cache = tmp_path_factory.mktemp("kp_cache")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache / "ultralytics"))
    return cache


@pytest.fixture
def kp_cli(kp_cache, tmp_path):
    """Run ``python -m vsynth`` with the tiny keypoints settings; returns (process, run folder)."""

    def _run(*extra: str, run_dir: Path | None = None, timeout: int = 300):
        rd = run_dir or (tmp_path / "run")
        args = [*TINY, *extra, f"hydra.run.dir={rd}"]
        p = run_cli(args, tmp_path, env={"VSYNTH_CACHE": str(kp_cache), "YOLO_CONFIG_DIR": str(kp_cache / "ultralytics")},
                    timeout=timeout)
        return p, rd

    return _run


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def compose(*overrides: str, cache: Path | None = None):
    """The composed config of the tiny settings (in-process)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from vsynth.paths import conf_dir
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    extra = [f"paths.cache={cache}"] if cache else []
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=[*TINY, *extra, *overrides])
