"""The ``slurm`` tests need a running SLURM; elsewhere they are skipped with the way to start one."""

from __future__ import annotations

import pytest

from tests.slurm.helpers import Sweep, slurm_problem


@pytest.fixture(autouse=True)
def _needs_slurm():
    problem = slurm_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture
def sweep(tmp_path):
    """Start sweeps of the tiny task on SLURM; anything still running is cancelled afterwards."""
    started: list[Sweep] = []

    def _start(*overrides: str, cwd=None) -> Sweep:
        cwd = cwd or tmp_path / f"sweep{len(started)}"
        cwd.mkdir(exist_ok=True)
        started.append(Sweep(cwd, *overrides))
        return started[-1]

    yield _start
    for s in started:
        s.close()
