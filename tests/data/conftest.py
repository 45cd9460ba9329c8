"""Fixtures for the data tests: one tiny demo world per test session (a fraction of a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsynth.data.demo import write_demo

TINY_COUNTS = {"real": {"train": 6, "val": 2, "test": 2}, "synthetic": {"train": 6, "val": 2}, "generated": {"train": 8}}


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete demo world (all three tasks), written once and only read by the tests."""
    root = tmp_path_factory.mktemp("demo") / "world"
    write_demo(root, seed=7, counts=TINY_COUNTS, size=(160, 120))
    return root
