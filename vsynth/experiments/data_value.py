"""The data-value experiment: learning curves with and without the extra data, and the worth in real frames.

``python -m vsynth experiment=data_value`` (``mode: datavalue``, any task) trains, under one
experiment root (the command's run folder), for every real-subset size in ``data_value.sizes``
(``all`` = the whole real train split), every seed in ``data_value.seeds`` and both arms:

* ``real_only``: the real subset alone (keypoints / detection: arm ``B``; segmentation: arm
  ``ratio`` with ``data.ratio=1.0``),
* ``with_extra``: the same subset plus the synthetic or generated source (arm ``A``; ``ratio`` at
  ``data.ratio=0.5``),

each run a complete run folder ``<root>/<arm role>-n<size>-seed<S>`` launched by
:mod:`vsynth.experiments.launch` as one stage (one after another as subprocesses with the basic
launcher, all at once as jobs of ``hydra/launcher=local|slurm``; finished runs are skipped and
unfinished ones resume when the command is rerun). The two arms differ only in the extra source:
the size is set by the same override (``data_value.size_key``, e.g. ``data.real_subset``) and the
subset draw depends on ``data.subset_seed`` only, so both arms and every seed train on the same
real frames. The answer (:mod:`vsynth.report.data_value`): ``data_value.json``, ``report.md`` and
``data_value.png`` at the root.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

from vsynth.errors import ConfigError, DataError, VsynthError
from vsynth.experiments.launch import RunSpec, Runs
from vsynth.experiments.role import Role
from vsynth.experiments.overrides import command_overrides, experiment_choice, passthrough_overrides, read_json
from vsynth.report.data_value import REAL_ONLY, ROLES, WITH_EXTRA, Cell, analyze, flat_metrics, write_outputs

log = logging.getLogger("vsynth.data_value")

ALL = "all"
#: keys of data_value.tasks.<task> (and of data_value itself, which overrides them)
PER_TASK = ("metric", "size_key", REAL_ONLY, WITH_EXTRA)


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


class DataValue:
    """Launches the runs of one data-value experiment and writes its answer."""

    def __init__(self, cfg, ctx) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.dv = cfg.data_value
        self.root = Path(ctx.dir)
        self.split = str(self.dv.get("split") or "test")
        task = str(cfg.task.name)
        table = _plain(self.dv.get("tasks")) or {}
        per_task = table.get(task) or table.get("default") or {}
        self.settings = {k: _plain(self.dv.get(k)) if self.dv.get(k) is not None else per_task.get(k) for k in PER_TASK}
        for k in PER_TASK:
            if self.settings[k] is None:
                raise ConfigError(f"data_value.{k}: not set, neither in data_value.tasks.{task} nor in "
                                  "data_value.tasks.default")
        self.metric = str(self.settings["metric"])
        self.size_key = str(self.settings["size_key"])
        self.arms = {role: self._arm(role) for role in ROLES}
        self.sizes = self._sizes()
        self.seeds = [int(s) for s in (self.dv.get("seeds") or [int(cfg.seed)])]
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"data_value.seeds: a seed is listed twice: {self.seeds}")
        self.base_args = ([f"experiment={exp}"] if (exp := experiment_choice(ctx)) else []) + passthrough_overrides(
            command_overrides(ctx), sections=("data_value", self.size_key))
        self.runs = Runs(self.root)

    def _arm(self, role: str) -> Role:
        return Role.parse(self.settings[role], f"data_value.{role}", labelled=False)  # runs are named by role

    def _sizes(self) -> list[str]:
        sizes = list(_plain(self.dv.get("sizes")) or [])
        out = []
        for s in sizes:
            if isinstance(s, str) and s.strip().lower() in (ALL, "null", "none"):
                out.append(ALL)
            elif s is None:
                out.append(ALL)
            elif isinstance(s, int) and not isinstance(s, bool) and s >= 1:
                out.append(str(s))
            else:
                raise ConfigError(f"data_value.sizes: {s!r} is not a number of real frames (>= 1) or 'all'")
        if len(set(out)) != len(out):
            raise ConfigError(f"data_value.sizes: a size is listed twice: {sizes}")
        if len(out) < 3:
            raise ConfigError(f"data_value.sizes: the real-only curve needs at least three sizes, got {sizes}")
        return out

    # ---- runs ------------------------------------------------------------------------------
    def spec(self, role: str, size: str, seed: int) -> RunSpec:
        arm = self.arms[role]
        value = "null" if size == ALL else size
        overrides = [*self.base_args, *[str(o) for o in (self.dv.get("overrides") or [])], *arm.overrides,
                     "mode=train", f"arm={arm.arm}", f"{self.size_key}={value}", f"seed={seed}",
                     f"name={self.cfg.task.name}-{role}-n{size}",
                     f"init={self.cfg.init}" if self.cfg.get("init") else "init=null"]
        return RunSpec(f"{role}-n{size}-seed{seed}", f"{role} at {size} real frames (seed {seed})", overrides)

    def _frames(self, run_dir: Path, size: str) -> int:
        """Real frames a run trained on: the size, or for ``all`` what the run recorded (data/sources.json)."""
        if size != ALL:
            return int(size)
        sources = read_json(run_dir / "data" / "sources.json")
        n = (sources.get("real") or {}).get("used")
        if not isinstance(n, int):
            raise DataError(f"{run_dir}/data/sources.json: no count of the real frames the run trained on "
                            "(a run of an older vsynth?); list a number instead of 'all' in data_value.sizes")
        return n

    def _cells(self, specs: list[tuple[str, str, int, RunSpec]]) -> list[Cell]:
        cells: dict[tuple[str, str], Cell] = {}
        for role, size, seed, spec in specs:
            run = self.runs.folder(spec)
            metrics = read_json(run / "metrics.json")
            value = metrics.get(f"{self.split}/{self.metric}")
            if not isinstance(value, (int, float)):
                have = ", ".join(sorted(k for k in metrics if k.startswith(f"{self.split}/"))[:8])
                raise ConfigError(f"data_value.metric={self.metric}: {run}/metrics.json has no "
                                  f"{self.split}/{self.metric} (it has {have})")
            frames = self._frames(run, size)
            cell = cells.setdefault((role, size), Cell(role, size, frames, []))
            if cell.frames != frames:
                raise DataError(f"{run}: trained on {frames} real frames, its other seeds on {cell.frames}")
            cell.values.append(float(value))
            cell.seeds.append(seed)
            cell.runs.append(str(run))
        self._attach_states(list(cells.values()))
        return list(cells.values())

    def _attach_states(self, cells: list[Cell]) -> None:
        """Every run's per-image test state; none at all when a run kept no per-image files (seeds only)."""
        from vsynth.report.run_states import run_state

        sigmas = self.dv.get("sigmas")
        try:
            for c in cells:
                c.states = [run_state(r, self.split, list(sigmas) if sigmas else None) for r in c.runs]
        except VsynthError as e:
            log.info("%s; the intervals resample seeds only", str(e).splitlines()[0])
            for c in cells:
                c.states = None

    def run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        t0 = time.time()
        specs = [(role, size, seed, self.spec(role, size, seed)) for size in self.sizes for role in ROLES
                 for seed in self.seeds]
        log.info("Data value: %d runs (%d sizes x 2 arms x %d seeds) through hydra/launcher=%s", len(specs),
                 len(self.sizes), len(self.seeds), self.runs.launcher)
        self.runs.run([s for *_, s in specs])
        cells = self._cells(specs)
        bs = self.dv.get("bootstrap") or {}
        result = analyze(cells, metric=self.metric, mode=str(self.dv.get("mode") or "max"),
                         samples=int(bs.get("samples", 1000)), seed=int(bs.get("seed", 0)),
                         level=float(bs.get("level", 0.95)))
        result["split"] = self.split
        result["arms"] = {role: {"arm": self.arms[role].arm, "overrides": list(self.arms[role].overrides)}
                          for role in ROLES}
        result["size_key"] = self.size_key
        result["sizes"] = self.sizes
        result["seeds"] = self.seeds
        result["wall_time_s"] = round(time.time() - t0, 1)
        arms = {role: " ".join(a.args()) for role, a in self.arms.items()}
        write_outputs(self.root, result, str(self.dv.get("title") or "What the extra data is worth in real frames"),
                      arms)
        for p in result["points"]:
            log.info("%s real frames: %s", p["size"], p["worth"]["answer"])
        return flat_metrics(result), {"report_written": True, "data_value": result}


def run_data_value(cfg, ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mode=datavalue``: run the experiment in ``ctx.dir``; (metrics for metrics.json, extra)."""
    if cfg.get("data_value") is None:
        raise ConfigError("mode=datavalue needs a data_value section (use experiment=data_value)")
    return DataValue(cfg, ctx).run()
