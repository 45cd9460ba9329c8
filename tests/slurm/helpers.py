"""Drive vsynth sweeps through a real SLURM: submit in the background, find the job, signal it, wait.

Used by the ``slurm`` integration tests and by ``benchmarks/slurm_jobs.py``. Jobs run the tiny test
task with one CPU and 1 GB per task, so they fit the one-node SLURM of ``scripts/setup-slurm.sh``.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from tests.conftest import cli_env, tiny_args

ON_SLURM = ("hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1", "trainer.threads=1")
SETUP = "start a one-node SLURM with `sudo bash scripts/setup-slurm.sh`"


@functools.lru_cache(maxsize=1)
def slurm_problem() -> str | None:
    """Why SLURM cannot run jobs here; None when ``sinfo`` answers and a node is up."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return f"no SLURM on this machine (no sinfo); {SETUP}"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within 30 s; {SETUP}"
    if r.returncode != 0:
        return f"SLURM is not running (sinfo: {r.stderr.strip()[:200]}); {SETUP}"
    if not any(s.rstrip("*~#$@^-+") in ("idle", "mixed", "allocated", "completing") for s in r.stdout.split()):
        return f"no SLURM node is up (sinfo says {r.stdout.split()}); {SETUP}"
    return None


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.25) -> Any:
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def log_times(run_log: Path, needle: str) -> list[float]:
    """Epoch seconds of the run.log lines containing ``needle`` (run.log stamps local time)."""
    out = []
    for line in run_log.read_text().splitlines():
        if needle in line and line.startswith("["):
            out.append(datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


class Sweep:
    """``python -m vsynth -m <tiny task on SLURM> ...`` running in the background in ``cwd``."""

    def __init__(self, cwd: Path, *overrides: str) -> None:
        self.cwd = cwd
        self.started = time.time()
        self._out = open(cwd / "sweep.out", "w")
        self._err = open(cwd / "sweep.err", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "vsynth", "-m", *tiny_args(*ON_SLURM, *overrides)],
                                     cwd=cwd, env=cli_env(cwd), stdout=self._out, stderr=self._err)

    def root(self) -> Path:
        sweeps = self.cwd / "outputs" / "sweeps"
        return wait_for("the sweep folder", lambda: next(sweeps.glob("*"), None) if sweeps.is_dir() else None)

    def job_ids(self, n: int = 1) -> list[str]:
        """SLURM ids of the sweep's jobs, from submitit's folders (``12`` or, in an array, ``12_0``)."""
        sub = self.root() / ".submitit"

        def ids() -> list[str] | None:
            names = sorted(d.name for d in sub.glob("*") if d.is_dir())
            if any("_" in x for x in names):  # an array: its own folder holds only the sbatch script
                names = [x for x in names if "_" in x]
            return names if len(names) >= n else None

        return wait_for(f"{n} submitted job(s)", ids)

    def job_folder(self) -> Path:
        """The folder of the sweep's only job."""
        root = self.root()
        return wait_for("the job folder", lambda: next((d for d in root.iterdir() if d.is_dir()
                                                        and not d.name.startswith(".")), None))

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Wait for the sweep command; its exit code, stdout and stderr."""
        code = self.proc.wait(timeout=timeout)
        self.ended = time.time()
        self._out.close()
        self._err.close()
        return code, (self.cwd / "sweep.out").read_text(), (self.cwd / "sweep.err").read_text()

    def close(self) -> None:
        """Stop a sweep still running, and its jobs (a failed test must not leave jobs on the node)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            for d in (self.cwd / "outputs" / "sweeps").glob("*/.submitit/*"):
                subprocess.run(["scancel", d.name], capture_output=True)
        self._out.close()
        self._err.close()


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def summary_rows(root: Path) -> list[dict]:
    with open(root / "summary.csv") as f:
        return list(csv.DictReader(f))


def training_underway(folder: Path) -> bool:
    """The job has saved last.pt at least once (so a stop now resumes mid-run)."""
    return (folder / "checkpoints" / "last.pt").is_file() and (folder / "metrics.jsonl").is_file()
