"""Running an experiment's runs: each a complete ``python -m vsynth`` run folder under the experiment root.

An experiment (the kill switch, data value) is a handful of ordinary runs plus an answer computed
from them. Where they run is the user's launcher choice, exactly as for a sweep:

* ``hydra/launcher=basic`` (the default): one after another, each as its own ``python -m vsynth``
  subprocess (a run's logging, signals and memory stay its own); its console goes to
  ``<root>/logs/<run>.out``;
* ``hydra/launcher=local`` or ``slurm``: every run of a stage is a job of that launcher, all at once,
  through Hydra's own launcher plugin (submitit), so SLURM arrays, requeue on preemption and
  ``hydra.launcher.*`` resources apply as they do to sweeps; submitit's logs go to ``<root>/.submitit/``.

Either way a run whose folder says ``done`` is not run again, and an unfinished one resumes from its
``last.pt``, so rerunning the experiment's command continues it. A run that ends failed stops the
experiment with one line naming its folder.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vsynth.errors import VsynthError
from vsynth.run.status import read_status

log = logging.getLogger("vsynth.experiments")


class RunFailed(VsynthError):
    """An experiment's run ended failed or interrupted; the message names its run folder."""


@dataclass
class RunSpec:
    """One run of an experiment: its folder name under the root, a label for logs, its overrides."""

    name: str
    label: str
    overrides: list[str] = field(default_factory=list)


def _launcher_choice() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get("hydra/launcher") or "basic")
    except ValueError:  # not under Hydra (tests call the orchestrator directly)
        return "basic"


def hydra_overrides() -> list[str]:
    """The experiment command's own ``hydra...`` overrides that its runs keep (config search path, launcher
    resources, logging), not where it runs nor its callbacks; [] outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except ValueError:
        return []
    return [str(o) for o in hc.overrides.hydra if not str(o).startswith(("hydra.run.", "hydra.sweep.", "hydra.callbacks"))]


class Runs:
    """Launches runs under ``root`` and reads back their results (``metrics.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.launcher = _launcher_choice()

    def folder(self, spec: RunSpec) -> Path:
        return self.root / spec.name

    def done(self, spec: RunSpec) -> bool:
        st = read_status(self.folder(spec)) or {}
        return st.get("state") == "done" and (self.folder(spec) / "metrics.json").is_file()

    def run(self, specs: Sequence[RunSpec]) -> None:
        """Run every spec that is not done (through the configured launcher); RunFailed if one fails."""
        todo = []
        for spec in specs:
            if self.done(spec):
                log.info("%s: already done in %s (reused)", spec.label, self.folder(spec))
            else:
                todo.append(spec)
        if not todo:
            return
        t0 = time.time()
        if self.launcher == "basic":
            for spec in todo:
                self._subprocess(spec)
        else:
            self._hydra_launcher(todo)
        failed = []
        log.info("%d run(s) through hydra/launcher=%s in %.0fs", len(todo), self.launcher, time.time() - t0)
        for spec in todo:
            st = read_status(self.folder(spec)) or {}
            log.info("%s: %s", spec.label, st.get("state", "no status"))
            if st.get("state") != "done":
                failed.append(f"{spec.label} ({st.get('error') or st.get('state') or 'did not start'}; "
                              f"see {self.folder(spec)}/run.log)")
        if failed:
            raise RunFailed(f"{failed[0]}{' and ' + str(len(failed) - 1) + ' more' if len(failed) > 1 else ''}; "
                            "rerun the same command to resume")

    # ---- basic: subprocesses, one after another -------------------------------------------------
    def _subprocess(self, spec: RunSpec) -> None:
        cmd = [sys.executable, "-m", "vsynth", *hydra_overrides(), *spec.overrides, f"hydra.run.dir={self.folder(spec)}"]
        log.info("%s: %s", spec.label, " ".join(shlex.quote(c) for c in cmd))
        env = dict(os.environ)
        repo = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.root / "logs" / f"{spec.name}.out", "a") as out:
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd())
        log.info("%s: exit %d", spec.label, code)

    # ---- local / slurm: Hydra's launcher plugin, all at once ------------------------------------
    def _hydra_launcher(self, specs: Sequence[RunSpec]) -> None:
        """The runs as one multirun of the configured launcher, job folders ``<root>/<name>``."""
        from hydra._internal.callbacks import Callbacks
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.utils import create_config_search_path
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.plugins import Plugins
        from hydra.types import HydraContext, RunMode

        from vsynth.__main__ import task_function
        from vsynth.paths import conf_dir

        hc = HydraConfig.get()
        # the command's own overrides too, so that a launcher chosen by its preset (e.g. experiment=kill_switch_planted
        # sets hydra/launcher=local) and the preset's hydra.launcher.* resources are the ones instantiated here
        overrides = [*hydra_overrides(), *[str(o) for o in hc.overrides.task],
                     f"hydra.sweep.dir={self.root}", "~hydra.callbacks.sweep_report"]  # no sweep report over ours
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(conf_dir())))
        master = loader.load_configuration(config_name=str(hc.job.config_name), overrides=overrides,
                                           run_mode=RunMode.MULTIRUN)
        context = HydraContext(config_loader=loader, callbacks=Callbacks(master))
        launcher = Plugins.instance().instantiate_launcher(hydra_context=context, task_function=task_function,
                                                           config=master)
        jobs = [[*spec.overrides, f"hydra.sweep.subdir={spec.name}"] for spec in specs]
        for spec in specs:
            log.info("%s: job of hydra/launcher=%s in %s", spec.label, self.launcher, self.folder(spec))
        returns: list[Any] = list(launcher.launch(jobs, initial_job_idx=0))
        log.info("launcher %s returned %d job(s)", self.launcher, len(returns))
