"""Fixtures of the detection tests: one tiny demo world per session (generated once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detection.helpers import CLASSES


@pytest.fixture(scope="session")
def det_cache(tmp_path_factory) -> Path:
    """A vsynth cache holding the tiny detection demo world used by every CLI test."""
    cache = tmp_path_factory.mktemp("det_cache")
    from vsynth.data.demo import ensure_demo

    ensure_demo("detection", cache / "demo", 0,
                {"real": {"train": 16, "val": 4, "test": 4}, "synthetic": {"train": 8, "val": 4, "test": 4}}, (320, 240))
    return cache


@pytest.fixture(scope="session")
def demo_root(det_cache) -> Path:
    roots = [p for p in (det_cache / "demo").iterdir() if p.name.startswith("detection-")]
    assert len(roots) == 1
    return roots[0]


@pytest.fixture
def classes():
    return list(CLASSES)
