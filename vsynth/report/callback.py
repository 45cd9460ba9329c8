"""Hydra callback keeping a sweep's summary.csv and report.md current.

Refreshed after every job (so a partial or still-running sweep already has a report, and a
failing job, which makes Hydra stop before ``on_multirun_end``, is still summed up) and once
more when the multirun ends; only that last refresh compares the arms on their per-image test
files (it re-scores every run; ``python -m vsynth.report SWEEP_DIR`` does it on demand).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode

log = logging.getLogger("vsynth.report")


def _refresh(sweep_dir: Path, compare: bool) -> Path | None:
    from vsynth.report.jobs import find_jobs
    from vsynth.report.sweep import write_sweep_report

    if sweep_dir.is_dir() and find_jobs(sweep_dir):
        return write_sweep_report(sweep_dir, compare=compare)
    return None


class SweepReport(Callback):
    def on_job_end(self, config: Any, job_return: Any = None, **kwargs: Any) -> None:
        try:
            if HydraConfig.get().mode != RunMode.MULTIRUN:
                return
        except ValueError:
            return
        from vsynth.run.cluster import launch

        if launch().rank != 0:  # a DDP job (several SLURM tasks) is one job: rank 0 sums it up
            return
        try:
            _refresh(Path(str(config.hydra.sweep.dir)), compare=False)  # the arm comparisons re-score every run: at the end
        except Exception as e:  # noqa: BLE001  (a report problem must never fail a training job)
            log.warning("could not refresh the sweep report: %s", e)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            report = _refresh(sweep_dir, compare=True)
        except Exception as e:  # noqa: BLE001  (the jobs are done: a comparison problem must not fail the sweep)
            log.warning("could not compare the arms in the sweep report (python -m vsynth.report %s says why): %s",
                        sweep_dir, e)
            report = _refresh(sweep_dir, compare=False)
        if report is not None:
            log.info("Sweep report: %s (summary: %s)", report, sweep_dir / "summary.csv")
            print(f"Sweep folder: {sweep_dir}")
