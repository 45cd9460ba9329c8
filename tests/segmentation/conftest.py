"""Helpers for the segmentation tests: the CLI at toy size (tests/segmentation/conf/experiment/seg_tiny.yaml)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SEG_CONF = REPO / "tests" / "segmentation" / "conf"
CLASSES = ["background", "road", "sidewalk", "building", "vehicle", "person"]


def seg_args(*extra: str, experiment: str = "seg_tiny") -> list[str]:
    return [f"hydra.searchpath=[file://{SEG_CONF}]", f"experiment={experiment}", *extra]


@pytest.fixture(scope="session")
def seg_cache(tmp_path_factory) -> Path:
    """One demo-world cache for the whole session (the tiny world is generated once)."""
    return tmp_path_factory.mktemp("seg-cache")


@pytest.fixture
def seg_cli(tmp_path, seg_cache):
    def _run(*args: str, cwd: Path | None = None, **kw):
        env = {"VSYNTH_CACHE": str(seg_cache), "OMP_NUM_THREADS": "1"}  # one thread: the machine is shared
        return run_cli(list(args), cwd or tmp_path, env=env, **kw)

    _run.cwd = tmp_path
    return _run


def read_json(path: Path):
    return json.loads(Path(path).read_text())


@pytest.fixture
def data_copy(tmp_path, seg_cache) -> Path:
    """A private copy of the tiny demo world's segmentation folders (real + generated + manifest)."""
    from vsynth.data.demo import ensure_demo

    world = ensure_demo("segmentation", seg_cache / "demo", 0,
                        {"real": {"train": 12, "val": 4, "test": 4}, "generated": {"train": 12}}, (96, 64))
    out = tmp_path / "data"
    shutil.copytree(world / "segmentation", out)
    return out
