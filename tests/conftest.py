"""Shared test helpers: run the CLI in a subprocess with the tiny test task."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY_CONF = REPO / "tests" / "tiny" / "conf"


def cli_env(cwd: Path, env: dict | None = None) -> dict:
    """The environment of a CLI subprocess: this repository's code, a cache under ``cwd``."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("VSYNTH_CACHE", str(cwd / ".cache"))
    e.update(env or {})
    return e


def run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsynth", *args], cwd=cwd, env=cli_env(cwd, env), capture_output=True,
                          text=True, timeout=timeout)


def tiny_args(*extra: str) -> list[str]:
    return [f"hydra.searchpath=[file://{TINY_CONF}]", "task=tiny", "arm=A", *extra]


@pytest.fixture
def tiny_cli(tmp_path):
    def _run(*extra: str, **kw):
        return run_cli(tiny_args(*extra), tmp_path, **kw)

    _run.cwd = tmp_path
    return _run
