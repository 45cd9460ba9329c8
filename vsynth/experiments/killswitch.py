"""The kill-switch experiment: a baseline, a control arm and a treatment arm, and a verdict.

``python -m vsynth experiment=kill_switch`` (``mode: killswitch``) runs, under one experiment
root (the run folder of the command itself):

1. the **baseline** (``killswitch.base``): trained here as arm ``base`` (default), or an existing
   checkpoint scored on the test split here (``base.ckpt``), or an existing run folder
   (``base.run``), or numbers given in config (``base.metrics``, e.g. the users' 0.2199; the
   report flags such a baseline as *not measured here*);
2. the **control** (arm ``B``) and the **treatment** (arm ``A``), each for every seed in
   ``killswitch.seeds``, all starting from the same checkpoint (the baseline's, or ``init``),
   each a complete, self-contained run folder ``<root>/<X>-seed<S>`` launched by
   :mod:`vsynth.experiments.launch` (one after another as subprocesses, or all at once as jobs of
   ``hydra/launcher=local|slurm``); a finished run is skipped and an unfinished one resumes when the
   experiment is rerun. ``killswitch.reuse.B=/path/to/run`` takes an existing control run instead;
3. ``report.md`` and ``killswitch.json`` at the root: base, B and A with the test metrics and the
   deltas vs base (mean ± spread over seeds), the treatment's contribution A - B with an interval
   over seeds and test images, how much of the spread each contributes, the smallest effect the
   experiment could detect and what the gate would need (:mod:`vsynth.report.uncertainty`), the
   keypoint audit for keypoint tasks, and one line ``VERDICT: PASS|MARGINAL|FAIL``.

The verdict is the users' gate: PASS when A >= base + margin, MARGINAL when A is in
[base, base + margin), FAIL when A < base. The report always shows the control next to it: a
gate the control alone clears says nothing about the treatment (the lesson of the stale
0.2199 baseline), and A - B with its interval is the number to read.

Task-agnostic: the metric names and arms come from config (``killswitch.metrics``); every task's
runs write their per-image test files (:mod:`vsynth.report.run_states`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from vsynth.errors import ConfigError, VsynthError
from vsynth.experiments.launch import RunSpec, Runs
from vsynth.experiments.role import Role
from vsynth.experiments.overrides import command_overrides as _command_overrides
from vsynth.experiments.overrides import experiment_choice as _experiment_choice
from vsynth.experiments.overrides import passthrough_overrides as _passthrough
from vsynth.experiments.overrides import read_json as _read_json
from vsynth.report.killswitch import ArmSummary, build_summary, finite, pp, write_outputs

log = logging.getLogger("vsynth.killswitch")


# ---- orchestration ---------------------------------------------------------------------------

def passthrough_overrides(overrides: Sequence[str]) -> list[str]:
    """The experiment command's overrides that every arm run inherits (not its own control keys)."""
    return _passthrough(overrides, sections=("killswitch",))


class Orchestrator:
    """Launches and collects the runs of one kill-switch experiment."""

    def __init__(self, cfg, ctx) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.ks = cfg.killswitch
        self.root = Path(ctx.dir)
        self.split = str(self.ks.get("split", "test"))
        self.metrics = [str(m) for m in self.ks.metrics]
        self.metric = str(self.ks.metric)
        self.seeds = [int(s) for s in (self.ks.seeds or [int(cfg.seed)])]
        if not self.seeds:
            raise ConfigError("killswitch.seeds: at least one seed is needed")
        self.base_args = self._base_args()
        self.runs = Runs(self.root)

    def _base_args(self) -> list[str]:
        args = []
        exp = _experiment_choice(self.ctx)
        if exp:
            args.append(f"experiment={exp}")
        args += passthrough_overrides(_command_overrides(self.ctx))
        return args

    def spec(self, arm: str | Role, seed: int, name: str, init: str | None, mode: str = "train", ckpt: str | None = None,
             baseline: bool = False, label: str = "") -> RunSpec:
        """One run of the experiment: ``<root>/<name>``, the command's own overrides plus the arm's."""
        role = arm if isinstance(arm, Role) else Role(arm, arm)
        extra = (self.ks.base.get("overrides") if baseline else self.ks.get("overrides")) or []
        overrides = [*self.base_args, *[str(o) for o in extra], *role.overrides, f"mode={mode}", f"arm={role.arm}",
                     f"seed={seed}", f"name={self.cfg.task.name}-{role.label}", f"init={init}" if init else "init=null"]
        if ckpt:
            overrides.append(f"ckpt={ckpt}")
        return RunSpec(name, label or f"arm {role.label} (seed {seed})", overrides)

    def launch(self, specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
        """Run the specs (skipping finished ones) through the configured launcher; their metrics.json."""
        self.runs.run(specs)
        return [_read_json(self.runs.folder(s) / "metrics.json") for s in specs]

    def _collect(self, arm: ArmSummary, metrics: Mapping[str, Any], run_dir: Path, seed: int | None) -> None:
        arm.runs.append(str(run_dir))
        if seed is not None:
            arm.seeds.append(seed)
        for m in self.metrics:
            v = metrics.get(f"{self.split}/{m}")
            arm.values.setdefault(m, []).append(float(v) if isinstance(v, (int, float)) else float("nan"))

    # ---- the three stages ------------------------------------------------------------------
    def baseline(self) -> tuple[ArmSummary, str | None]:
        """The baseline's summary and the checkpoint the arms start from."""
        b = self.ks.base
        arm_name = str(b.get("arm", "base"))
        init = str(self.cfg.init) if self.cfg.get("init") else None
        summary = ArmSummary(name=arm_name, description=self._describe(arm_name))
        given = [k for k in ("ckpt", "run", "metrics") if b.get(k)]
        if len(given) > 1 and not (given == ["ckpt", "metrics"]):
            raise ConfigError(f"killswitch.base: set one of ckpt, run, metrics (got {given})")
        if b.get("run"):
            run = Path(str(b.run)).expanduser().resolve()
            m = _read_json(run / "metrics.json")
            if not m:
                raise ConfigError(f"killswitch.base.run={run}: no metrics.json (not a finished vsynth run)")
            summary.origin = f"reused {run}"
            self._collect(summary, m, run, None)
            best = run / "checkpoints" / "best.pt"
            return summary, str(best) if best.is_file() else init
        if b.get("ckpt"):
            ckpt = Path(str(b.ckpt)).expanduser().resolve()
            if not ckpt.is_file():
                raise ConfigError(f"killswitch.base.ckpt={ckpt}: file not found")
            if b.get("metrics"):
                summary.origin, summary.measured = "given in config (killswitch.base.metrics)", False
                self._given(summary, b.metrics)
                return summary, str(ckpt)
            spec = self.spec(arm_name, self.seeds[0], f"{arm_name}-eval", None, mode="eval", ckpt=str(ckpt),
                             baseline=True, label="baseline (scoring base.ckpt)")
            (m,) = self.launch([spec])
            summary.origin = f"scored here: {ckpt}"
            self._collect(summary, m, self.runs.folder(spec), None)
            return summary, str(ckpt)
        if b.get("metrics"):
            summary.origin, summary.measured = "given in config (killswitch.base.metrics)", False
            self._given(summary, b.metrics)
            return summary, init
        seed = self.seeds[0]
        spec = self.spec(arm_name, seed, f"{arm_name}-seed{seed}", init, baseline=True,
                         label=f"baseline arm {arm_name} (seed {seed})")
        (m,) = self.launch([spec])
        run_dir = self.runs.folder(spec)
        self._collect(summary, m, run_dir, seed)
        return summary, str(run_dir / "checkpoints" / "best.pt")

    def _given(self, summary: ArmSummary, values: Any) -> None:
        if not isinstance(values, Mapping):
            raise ConfigError(f"killswitch.base.metrics must be {{metric: number, ...}}, got {values!r}")
        for m in self.metrics:
            v = values.get(m)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError(f"killswitch.base.metrics.{m} must be a number, got {v!r}")
            summary.values[m] = [float(v)] if v is not None else [float("nan")]

    def _describe(self, role: str | Role) -> str:
        """The arm's description (``conf/arm/<arm>.yaml``), with the role's overrides."""
        role = role if isinstance(role, Role) else Role(role, role)
        try:
            from omegaconf import OmegaConf

            from vsynth.paths import conf_dir

            p = conf_dir() / "arm" / f"{role.arm}.yaml"
            node = OmegaConf.load(p) if p.is_file() else {}
            text = str((node.get("arm") or node).get("description", "")) if node else ""
        except Exception:  # noqa: BLE001
            text = ""
        return f"{text} ({', '.join(role.overrides)})" if role.overrides else text

    def _reused(self, role: Role) -> ArmSummary | None:
        """An arm taken from finished runs (``killswitch.reuse.<label>``), or None."""
        reuse = (self.ks.get("reuse") or {}).get(role.label)
        if not reuse:
            return None
        summary = ArmSummary(name=role.label, description=self._describe(role))
        for r in [reuse] if isinstance(reuse, str) else list(reuse):
            run = Path(str(r)).expanduser().resolve()
            m = _read_json(run / "metrics.json")
            if not m:
                raise ConfigError(f"killswitch.reuse.{role.label}={run}: no metrics.json (not a finished vsynth run)")
            self._collect(summary, m, run, _read_json(run / "status.json").get("seed"))
        summary.origin = "reused " + ", ".join(summary.runs)
        return summary

    def arms(self, roles: Sequence[Role], start: str | None) -> list[ArmSummary]:
        """Every seed of every arm not reused, as one stage of runs (in parallel with a launcher)."""
        if len({r.label for r in roles}) < len(roles):
            raise ConfigError(f"killswitch.control and killswitch.treatment need different labels, got "
                              f"{[r.label for r in roles]} (set label: in one of them)")
        summaries = {r.label: self._reused(r) for r in roles}
        specs = [(r, seed, self.spec(r, seed, f"{r.label}-seed{seed}", start)) for r in roles
                 if summaries[r.label] is None for seed in self.seeds]
        results = self.launch([spec for _, _, spec in specs])
        for (r, seed, spec), m in zip(specs, results):
            if summaries[r.label] is None:
                summaries[r.label] = ArmSummary(name=r.label, description=self._describe(r))
            self._collect(summaries[r.label], m, self.runs.folder(spec), seed)
        return [summaries[r.label] for r in roles]

    def run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        t0 = time.time()
        base, start = self.baseline()
        log.info("Baseline %s: %s (%s); arms start from %s", base.name,
                 ", ".join(f"{m}={base.mean(m):.4f}" for m in self.metrics), base.origin, start or "fresh weights")
        control, treatment = self.arms([Role.parse(self.ks.control, "killswitch.control"),
                                        Role.parse(self.ks.treatment, "killswitch.treatment")], start)
        contribution = self._compare(treatment, control)
        summary = build_summary(base, control, treatment, metrics=self.metrics, metric=self.metric,
                                margin=float(self.ks.margin), contribution=contribution)
        if base.measured and base.runs:
            summary["delta_vs_base_uncertainty"] = {arm.name: self._compare(arm, base, gate=None)
                                                    for arm in (control, treatment)}
        summary["keypoint_audit"] = self._audit(treatment, control)
        summary["wall_time_s"] = round(time.time() - t0, 1)
        summary["start_checkpoint"] = start
        write_outputs(self.root, summary, base, control, treatment, self.metrics,
                      title=str(self.ks.get("title") or "Kill switch"))
        log.info("A - B = %s %s; %s", pp(summary["contribution"]["mean"]), self.metric, summary["verdict_line"])
        print(summary["verdict_line"])
        flat: dict[str, Any] = {"killswitch/verdict": summary["verdict"], "killswitch/margin": summary["margin"],
                                "killswitch/gate": summary["gate"]}
        for key, arm in (("base", base), ("B", control), ("A", treatment)):
            for m in self.metrics:
                flat[f"{key}/{m}"] = finite(arm.mean(m))
        con = summary["contribution"]
        flat["contribution/mean"] = con.get("mean")
        pw, var = con.get("power") or {}, con.get("variance") or {}
        for key, value in (("low", con.get("low")), ("high", con.get("high")), ("p_value", con.get("p_value")),
                           ("se", con.get("se")), ("seed_share", var.get("seed_share")), ("mde", pw.get("mde")),
                           ("gate_detectable", pw.get("gate_detectable")),
                           ("seeds_needed", (pw.get("seeds_needed") or {}).get("seeds")),
                           ("images_needed", (pw.get("images_needed") or {}).get("images"))):
            if value is not None:
                flat[f"contribution/{key}"] = value
        if summary.get("keypoint_audit"):
            flat["keypoint_audit/flagged"] = summary["keypoint_audit"].get("every_seed")
        return flat, {"report_written": True, "killswitch": summary}

    # ---- statistics on the runs' per-image files --------------------------------------------------
    def _compare(self, a: ArmSummary, b: ArmSummary, gate: float | None | str = "margin") -> dict[str, Any]:
        """Two-level bootstrap (seeds, then test images) of mean(a) - mean(b) on the runs' test files."""
        from vsynth.report.run_states import compare_runs

        bs = self.ks.get("bootstrap") or {}
        sigmas = self.ks.get("sigmas")
        try:
            return compare_runs(a.runs, b.runs, metric=self.metric, split=self.split,
                                sigmas=list(sigmas) if sigmas else None, names=(a.name, b.name),
                                samples=int(bs.get("samples", 1000)), seed=int(bs.get("seed", 0)),
                                level=float(bs.get("level", 0.95)),
                                gate=float(self.ks.margin) if gate == "margin" else gate)
        except VsynthError as e:
            return {"reason": str(e).splitlines()[0]}

    def _audit(self, treatment: ArmSummary, control: ArmSummary) -> dict[str, Any] | None:
        """Keypoints only: which keypoints' mean offsets differ between A and B, per seed pair."""
        from vsynth.report.keypoint_audit import run_audit

        a0 = Path(treatment.runs[0]) if treatment.runs else None
        if a0 is None or not (a0 / f"gt_{self.split}.json").is_file() or not (a0 / f"predictions_{self.split}.json").is_file():
            return None
        try:
            gt = json.loads((a0 / f"gt_{self.split}.json").read_text())
        except (OSError, ValueError):
            return None
        if not any(c.get("keypoints") for c in gt.get("categories", [])):
            return None
        sigmas = self.ks.get("sigmas")
        bs = self.ks.get("bootstrap") or {}
        pairs = []
        for ra, rb, seed in zip(treatment.runs, control.runs, treatment.seeds or [None] * len(treatment.runs)):
            out = self.root / "keypoint_audit" / (f"seed{seed}" if seed is not None else Path(ra).name)
            try:
                res = run_audit(Path(ra) / f"gt_{self.split}.json", Path(ra) / f"predictions_{self.split}.json",
                                Path(rb) / f"predictions_{self.split}.json", sigmas=list(sigmas) if sigmas else None,
                                out_dir=out, samples=int(bs.get("samples", 1000)), seed=int(bs.get("seed", 0)))
            except VsynthError as e:
                log.warning("keypoint audit of %s vs %s skipped: %s", ra, rb, e)
                continue
            pairs.append({"seed": seed, "flagged": list(res["flagged"]), "json": str(out / "keypoint_audit.json"),
                          "png": str(out / "keypoint_audit.png")})
        if not pairs:
            return None
        every = sorted(set.intersection(*(set(p["flagged"]) for p in pairs)))
        return {"pairs": pairs, "every_seed": every}


def run_killswitch(cfg, ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mode=killswitch``: run the experiment in ``ctx.dir``; (metrics for metrics.json, extra)."""
    return Orchestrator(cfg, ctx).run()
