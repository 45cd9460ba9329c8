"""The kill-switch experiment: a baseline, a control arm and a treatment arm, and a verdict.

``python -m vsynth experiment=kill_switch`` (``mode: killswitch``) runs, under one experiment
root (the run folder of the command itself):

1. the **baseline** (``killswitch.base``): trained here as arm ``base`` (default), or an existing
   checkpoint scored on the test split here (``base.ckpt``), or an existing run folder
   (``base.run``), or numbers given in config (``base.metrics``, e.g. the users' 0.2199; the
   report flags such a baseline as *not measured here*);
2. the **control** (arm ``B``) and the **treatment** (arm ``A``), each for every seed in
   ``killswitch.seeds``, all starting from the same checkpoint (the baseline's, or ``init``),
   each as its own ``python -m vsynth ... arm=X seed=S hydra.run.dir=<root>/<X>-seed<S>``
   subprocess: a complete, self-contained run folder that resumes if the experiment is rerun and
   is skipped when already done. ``killswitch.reuse.B=/path/to/run`` takes an existing control
   run instead of training one;
3. ``report.md`` and ``killswitch.json`` at the root: base, B and A with the test metrics and the
   deltas vs base (mean ± spread over seeds), the treatment's contribution A - B with a paired
   bootstrap 95% interval over test images, and one line ``VERDICT: PASS|MARGINAL|FAIL``.

The verdict is the users' gate: PASS when A >= base + margin, MARGINAL when A is in
[base, base + margin), FAIL when A < base. The report always shows the control next to it: a
gate the control alone clears says nothing about the treatment (the lesson of the stale
0.2199 baseline), and A - B with its interval is the number to read.

Task-agnostic: the metric names, arms and per-image files come from config
(``killswitch.metrics``; each arm run writes ``predictions_test.json`` + ``gt_test.json``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vsynth.errors import ConfigError, VsynthError

log = logging.getLogger("vsynth.killswitch")

PASS, MARGINAL, FAIL = "PASS", "MARGINAL", "FAIL"
#: comparisons are made on values rounded to this many decimals, so 0.2399 >= 0.2199 + 0.02 holds
_DECIMALS = 9


class ArmFailed(VsynthError):
    """An arm's run ended failed or interrupted; the message names its run folder."""


# ---- verdict ---------------------------------------------------------------------------------

def verdict(treatment: float, base: float, margin: float) -> str:
    """PASS if treatment >= base + margin; MARGINAL if in [base, base + margin); FAIL if below base."""
    if any(not isinstance(v, (int, float)) or math.isnan(v) for v in (treatment, base, margin)):
        raise ValueError(f"verdict needs numbers, got treatment={treatment}, base={base}, margin={margin}")
    if margin < 0:
        raise ConfigError(f"killswitch.margin must be >= 0, got {margin}")
    t, b, gate = round(treatment, _DECIMALS), round(base, _DECIMALS), round(base + margin, _DECIMALS)
    if t >= gate:
        return PASS
    if t >= b:
        return MARGINAL
    return FAIL


@dataclass
class ArmSummary:
    """Test metrics of one arm over its seeds."""

    name: str
    description: str = ""
    runs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # metric -> one value per seed
    origin: str = "trained here"  # trained here | reused <path> | given in config | scored here
    measured: bool = True

    def mean(self, metric: str) -> float:
        v = [x for x in self.values.get(metric, []) if x is not None and not math.isnan(x)]
        return sum(v) / len(v) if v else float("nan")

    def spread(self, metric: str) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        v = [x for x in self.values.get(metric, []) if x is not None and not math.isnan(x)]
        if len(v) < 2:
            return 0.0
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    def as_json(self, metrics: Sequence[str]) -> dict[str, Any]:
        return {"description": self.description, "origin": self.origin, "measured": self.measured,
                "runs": self.runs, "seeds": self.seeds, "values": self.values,
                "mean": {m: _finite(self.mean(m)) for m in metrics}, "std": {m: _finite(self.spread(m)) for m in metrics}}


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _pp(x: float | None, signed: bool = True) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x * 100:+.1f} pp" if signed else f"{x * 100:.1f} pp"


def _val(arm: ArmSummary, metric: str) -> str:
    m = arm.mean(metric)
    if math.isnan(m):
        return "n/a"
    if len(arm.values.get(metric, [])) > 1:
        return f"{m:.4f} ± {arm.spread(metric):.4f}"
    return f"{m:.4f}"


def build_summary(base: ArmSummary, control: ArmSummary, treatment: ArmSummary, *, metrics: Sequence[str],
                  metric: str, margin: float, contribution: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything ``killswitch.json`` holds; ``verdict`` compares treatment and base on ``metric``."""
    if metric not in metrics:
        raise ConfigError(f"killswitch.metric={metric} is not among killswitch.metrics {list(metrics)}")
    a, b, c = treatment.mean(metric), base.mean(metric), control.mean(metric)
    if math.isnan(a) or math.isnan(b):
        raise ConfigError(f"killswitch: no {metric} for the treatment ({a}) or the baseline ({b}); check the runs")
    v = verdict(a, b, margin)
    notes = []
    if not base.measured:
        notes.append(f"The baseline ({b:.4f}) is {base.origin}, not measured in this experiment: if it came from a "
                     "different training or evaluation pipeline the gate may be stale. Prefer killswitch.base.ckpt.")
    if not math.isnan(c) and verdict(c, b, margin) == PASS:
        notes.append("The control arm alone clears the gate (B >= base + margin): the gate is not evidence of a "
                     "contribution of the treatment data; read A - B below.")
    if contribution and contribution.get("low") is not None:
        lo, hi = contribution["low"], contribution["high"]
        if lo <= 0 <= hi:
            notes.append(f"The {contribution.get('level', 0.95):.0%} interval of A - B includes 0: the treatment's "
                         "contribution is not distinguishable from zero on this test set.")
    return {
        "metric": metric,
        "margin": margin,
        "gate": b + margin,
        "verdict": v,
        "verdict_line": f"VERDICT: {v}",
        "arms": {"base": base.as_json(metrics), "B": control.as_json(metrics), "A": treatment.as_json(metrics)},
        "names": {"base": base.name, "B": control.name, "A": treatment.name},
        "delta_vs_base": {arm.name: {m: _finite(arm.mean(m) - base.mean(m)) for m in metrics}
                          for arm in (control, treatment)},
        "contribution": {"metric": metric, "mean": _finite(a - c), **(dict(contribution) if contribution else {})},
        "notes": notes,
    }


def render_report(summary: Mapping[str, Any], base: ArmSummary, control: ArmSummary, treatment: ArmSummary,
                  metrics: Sequence[str], title: str = "Kill switch") -> str:
    """The experiment root's report.md."""
    metric, margin = summary["metric"], summary["margin"]
    lines = [f"# {title}", ""]
    lines += [f"Question: does arm {treatment.name} ({treatment.description or 'treatment'}) lift the model over the "
              f"baseline by at least {margin * 100:.1f} pp {metric}, and how much of that is the treatment data "
              f"itself? Arm {control.name} ({control.description or 'control'}) differs from it only in the data "
              f"mix, so {treatment.name} - {control.name} is the treatment data's contribution.", ""]
    header = "| run | " + " | ".join(metrics) + f" | Δ {metric} vs base | seeds | origin |"
    lines += [header, "|---|" + "---|" * (len(metrics) + 3)]
    for label, arm in (("base", base), ("B (control)", control), ("A (treatment)", treatment)):
        delta = "" if arm is base else _pp(arm.mean(metric) - base.mean(metric))
        lines.append(f"| {label}: {arm.name} | " + " | ".join(_val(arm, m) for m in metrics)
                     + f" | {delta} | {len(arm.seeds) or '-'} | {arm.origin} |")
    lines.append("")
    lines += ["Δ vs base for every metric:", ""]
    for arm in (control, treatment):
        lines.append(f"- {arm.name}: " + ", ".join(f"{m} {_pp(arm.mean(m) - base.mean(m))}" for m in metrics))
    lines.append("")
    con = summary["contribution"]
    ci = ""
    if con.get("low") is not None:
        ci = (f", {con.get('level', 0.95):.0%} paired-bootstrap interval [{_pp(con['low'])}, {_pp(con['high'])}] "
              f"over {con.get('num_images', '?')} test images ({con.get('samples', '?')} resamples)")
    elif con.get("reason"):
        ci = f" (no interval: {con['reason']})"
    lines += ["## Contribution of the treatment data", "",
              f"A - B = **{_pp(con.get('mean'))}** {metric}{ci}.", ""]
    if summary["notes"]:
        lines += ["## Read with care", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    lines += ["## Gate", "",
              f"PASS if A >= base + {margin * 100:.1f} pp ({summary['gate']:.4f}); MARGINAL if A in "
              f"[base, base + {margin * 100:.1f} pp); FAIL if A < base. A = {treatment.mean(metric):.4f}, "
              f"base = {base.mean(metric):.4f}.", ""]
    lines += ["Run folders:", ""]
    for arm in (base, control, treatment):
        for r in arm.runs:
            lines.append(f"- {arm.name}: `{r}`")
    lines += ["", summary["verdict_line"], ""]
    return "\n".join(lines)


# ---- per-image uncertainty -------------------------------------------------------------------

def paired_contribution(treatment_runs: Sequence[Path], control_runs: Sequence[Path], *, metric: str,
                        sigmas: Sequence[float] | None, samples: int, seed: int, level: float,
                        split: str = "test") -> dict[str, Any]:
    """Paired bootstrap of mean(treatment) - mean(control) over the test images.

    Each run folder holds ``predictions_<split>.json`` (COCO results) and ``gt_<split>.json``;
    seeds are paired by position and averaged inside every resample.
    """
    from vsynth.eval.keypoints import KeypointEvaluator

    try:
        from vsynth.eval.bootstrap import paired_bootstrap
    except ImportError as e:  # the eval package is older than this report
        return {"reason": f"vsynth.eval.bootstrap unavailable ({e})"}
    pairs = list(zip(treatment_runs, control_runs))
    if not pairs:
        return {"reason": "no paired runs"}
    gt_ref = None
    states_a, states_b = [], []
    for ra, rb in pairs:
        files = {}
        for tag, r in (("A", ra), ("B", rb)):
            gt, pred = Path(r) / f"gt_{split}.json", Path(r) / f"predictions_{split}.json"
            if not gt.is_file() or not pred.is_file():
                return {"reason": f"{r} has no {gt.name}/{pred.name}"}
            files[tag] = (gt, pred)
        gts = {tag: json.loads(g.read_text()) for tag, (g, _) in files.items()}
        ids = {tag: sorted(img["id"] for img in gts[tag]["images"]) for tag in gts}
        if ids["A"] != ids["B"] or (gt_ref is not None and ids["A"] != gt_ref):
            return {"reason": "the arms were scored on different test images"}
        gt_ref = ids["A"]
        ev = {tag: KeypointEvaluator.from_coco_files(gts[tag], str(files[tag][1]), sigmas=sigmas) for tag in files}
        states_a.append(ev["A"].bootstrap_state())
        states_b.append(ev["B"].bootstrap_state())
    if len(pairs) == 1:
        res = paired_bootstrap(states_a[0], states_b[0], metric=metric, n=samples, seed=seed, ci=level)
    else:
        res = _multi_seed_bootstrap(states_a, states_b, metric, samples, seed, level)
    return {"low": float(res["low"]), "high": float(res["high"]), "level": level, "samples": samples,
            "num_images": int(res["num_images"]), "delta": float(res["delta"]),
            "prob_a_better": float(res["prob_a_better"]), "p_value": float(res["p_value"]), "pairs": len(pairs)}


def _multi_seed_bootstrap(states_a: Sequence[Any], states_b: Sequence[Any], metric: str, n: int, seed: int,
                          level: float) -> dict[str, Any]:
    """``paired_bootstrap`` for several seeds: each resample scores mean over seeds of A minus of B.

    The same image multiplicities are applied to every run, so image difficulty cancels out and
    the interval covers test-image sampling; the seed-to-seed spread is reported separately.
    """
    import numpy as np

    from vsynth.eval.bootstrap import metric_value

    n_images = states_a[0].image_ids.size

    def diff(weights):
        va = [metric_value(s.summarize(weights), metric) for s in states_a]
        vb = [metric_value(s.summarize(weights), metric) for s in states_b]
        return float(np.mean(va) - np.mean(vb))

    delta = diff(None)
    rng = np.random.default_rng(seed)
    deltas = np.array([diff(np.bincount(rng.integers(0, n_images, size=n_images), minlength=n_images))
                       for _ in range(int(n))])
    tail = (1 - level) / 2
    finite = deltas[np.isfinite(deltas)]
    low, high = (np.quantile(finite, [tail, 1 - tail]) if finite.size else (float("nan"), float("nan")))
    le, ge = (float(np.mean(finite <= 0)), float(np.mean(finite >= 0))) if finite.size else (float("nan"),) * 2
    return {"delta": delta, "low": float(low), "high": float(high), "num_images": int(n_images),
            "prob_a_better": float(np.mean(finite > 0)) if finite.size else float("nan"),
            "p_value": min(1.0, 2 * min(le, ge))}


# ---- orchestration ---------------------------------------------------------------------------

_OWN_KEYS = ("mode", "arm", "seed", "init", "name", "ckpt", "experiment")


def passthrough_overrides(overrides: Sequence[str]) -> list[str]:
    """The experiment command's overrides that every arm run inherits (not its own control keys)."""
    out = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.startswith(("hydra.", "killswitch.", "killswitch")) or key in _OWN_KEYS:
            continue
        out.append(o)
    return out


def _command_overrides(ctx) -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001  (not under Hydra: read what Hydra saved)
        p = Path(ctx.dir) / ".hydra" / "overrides.yaml"
        if p.is_file():
            import yaml

            return list(yaml.safe_load(p.read_text()) or [])
    return []


def _experiment_choice(ctx) -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get("experiment")
    except Exception:  # noqa: BLE001
        return None


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _quote(v: Any) -> str:
    return str(v)


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

    def _base_args(self) -> list[str]:
        args = []
        exp = _experiment_choice(self.ctx)
        if exp:
            args.append(f"experiment={exp}")
        args += passthrough_overrides(_command_overrides(self.ctx))
        return args

    def command(self, arm: str, seed: int, run_dir: Path, init: str | None, mode: str = "train",
                ckpt: str | None = None, baseline: bool = False) -> list[str]:
        extra = (self.ks.base.get("overrides") if baseline else self.ks.get("overrides")) or []
        cmd = [sys.executable, "-m", "vsynth", *self.base_args, *[str(o) for o in extra], f"mode={mode}",
               f"arm={arm}", f"seed={seed}", f"name={self.cfg.task.name}-{arm}", f"hydra.run.dir={run_dir}"]
        cmd.append(f"init={init}" if init else "init=null")
        if ckpt:
            cmd.append(f"ckpt={ckpt}")
        return cmd

    def launch(self, label: str, cmd: list[str], run_dir: Path) -> dict[str, Any]:
        """Run one arm (skipped by vsynth itself when its folder is already done); its metrics.json."""
        run_dir.mkdir(parents=True, exist_ok=True)
        status = _read_json(run_dir / "status.json")
        if status.get("state") == "done" and (run_dir / "metrics.json").is_file():
            log.info("%s: already done in %s (reused)", label, run_dir)
            return _read_json(run_dir / "metrics.json")
        log.info("%s: %s", label, " ".join(shlex.quote(c) for c in cmd))
        t0 = time.time()
        env = dict(os.environ)
        repo = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.root / "logs" / f"{run_dir.name}.out", "a") as out:
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd())
        status = _read_json(run_dir / "status.json")
        log.info("%s: exit %d after %.0fs (%s)", label, code, time.time() - t0, status.get("state"))
        if code != 0 or status.get("state") != "done":
            why = status.get("error") or f"exit code {code}"
            raise ArmFailed(f"killswitch: {label} failed ({why}); see {run_dir}/run.log and rerun to resume")
        return _read_json(run_dir / "metrics.json")

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
            run_dir = self.root / f"{arm_name}-eval"
            m = self.launch("baseline (scoring base.ckpt)", self.command(arm_name, self.seeds[0], run_dir, None,
                                                                          mode="eval", ckpt=str(ckpt),
                                                                          baseline=True), run_dir)
            summary.origin = f"scored here: {ckpt}"
            self._collect(summary, m, run_dir, None)
            return summary, str(ckpt)
        if b.get("metrics"):
            summary.origin, summary.measured = "given in config (killswitch.base.metrics)", False
            self._given(summary, b.metrics)
            return summary, init
        seed = self.seeds[0]
        run_dir = self.root / f"{arm_name}-seed{seed}"
        m = self.launch(f"baseline arm {arm_name} (seed {seed})",
                        self.command(arm_name, seed, run_dir, init, baseline=True), run_dir)
        self._collect(summary, m, run_dir, seed)
        best = run_dir / "checkpoints" / "best.pt"
        return summary, str(best)

    def _given(self, summary: ArmSummary, values: Mapping[str, Any]) -> None:
        for m in self.metrics:
            v = values.get(m)
            summary.values[m] = [float(v)] if v is not None else [float("nan")]

    def _describe(self, arm: str) -> str:
        try:
            from omegaconf import OmegaConf

            from vsynth.paths import conf_dir

            p = conf_dir() / "arm" / f"{arm}.yaml"
            return str(OmegaConf.load(p).get("description", "")) if p.is_file() else ""
        except Exception:  # noqa: BLE001
            return ""

    def arm(self, arm_name: str, start: str | None) -> ArmSummary:
        summary = ArmSummary(name=arm_name, description=self._describe(arm_name))
        reuse = (self.ks.get("reuse") or {}).get(arm_name)
        if reuse:
            runs = [reuse] if isinstance(reuse, str) else list(reuse)
            for r in runs:
                run = Path(str(r)).expanduser().resolve()
                m = _read_json(run / "metrics.json")
                if not m:
                    raise ConfigError(f"killswitch.reuse.{arm_name}={run}: no metrics.json (not a finished vsynth run)")
                status = _read_json(run / "status.json")
                self._collect(summary, m, run, status.get("seed"))
            summary.origin = "reused " + ", ".join(summary.runs)
            return summary
        for seed in self.seeds:
            run_dir = self.root / f"{arm_name}-seed{seed}"
            m = self.launch(f"arm {arm_name} (seed {seed})", self.command(arm_name, seed, run_dir, start), run_dir)
            self._collect(summary, m, run_dir, seed)
        return summary

    def run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        base, start = self.baseline()
        log.info("Baseline %s: %s (%s); arms start from %s", base.name,
                 ", ".join(f"{m}={base.mean(m):.4f}" for m in self.metrics), base.origin, start or "fresh weights")
        control = self.arm(str(self.ks.control), start)
        treatment = self.arm(str(self.ks.treatment), start)
        bs = self.ks.get("bootstrap") or {}
        sigmas = self.ks.get("sigmas")
        try:
            contribution = paired_contribution(
                [Path(r) for r in treatment.runs], [Path(r) for r in control.runs], metric=self.metric,
                sigmas=list(sigmas) if sigmas else None, samples=int(bs.get("samples", 1000)),
                seed=int(bs.get("seed", 0)), level=float(bs.get("level", 0.95)), split=self.split)
        except VsynthError as e:
            contribution = {"reason": str(e).splitlines()[0]}
        summary = build_summary(base, control, treatment, metrics=self.metrics, metric=self.metric,
                                margin=float(self.ks.margin), contribution=contribution)
        summary["wall_time_s"] = round(time.time() - t0, 1)
        summary["start_checkpoint"] = start
        write_outputs(self.root, summary, base, control, treatment, self.metrics,
                      title=str(self.ks.get("title") or "Kill switch"))
        log.info("A - B = %s %s; %s", _pp(summary["contribution"]["mean"]), self.metric, summary["verdict_line"])
        print(summary["verdict_line"])
        flat: dict[str, Any] = {"killswitch/verdict": summary["verdict"], "killswitch/margin": summary["margin"],
                                "killswitch/gate": summary["gate"]}
        for key, arm in (("base", base), ("B", control), ("A", treatment)):
            for m in self.metrics:
                flat[f"{key}/{m}"] = _finite(arm.mean(m))
        flat["contribution/mean"] = summary["contribution"].get("mean")
        for k in ("low", "high"):
            if summary["contribution"].get(k) is not None:
                flat[f"contribution/{k}"] = summary["contribution"][k]
        return flat, {"report_written": True, "killswitch": summary}


def write_outputs(root: Path, summary: Mapping[str, Any], base: ArmSummary, control: ArmSummary,
                  treatment: ArmSummary, metrics: Sequence[str], title: str = "Kill switch") -> None:
    from vsynth.run.atomic import write_json, write_text

    write_json(root / "killswitch.json", summary)
    write_text(root / "report.md", render_report(summary, base, control, treatment, metrics, title=title))


def run_killswitch(cfg, ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mode=killswitch``: run the experiment in ``ctx.dir``; (metrics for metrics.json, extra)."""
    if cfg.get("killswitch") is None:
        raise ConfigError("mode=killswitch needs a killswitch section (use experiment=kill_switch)")
    return Orchestrator(cfg, ctx).run()


def main() -> None:
    """``python -m vsynth.report.killswitch experiment=kill_switch ...``: the same as ``python -m vsynth``,
    usable before ``vsynth/app.py`` dispatches ``mode=killswitch`` itself."""
    import vsynth.app as app

    if "killswitch" not in Path(app.__file__).read_text():
        original = app._execute

        def _execute(cfg, ctx, device):
            if cfg.mode == "killswitch":
                return run_killswitch(cfg, ctx)
            return original(cfg, ctx, device)

        app._execute = _execute
        original_report = None
        import vsynth.report.run_report as rr

        original_report = rr.write_run_report

        def _report(ctx, metrics, extra, status):
            if not extra.get("report_written"):
                original_report(ctx, metrics, extra, status)

        rr.write_run_report = _report
    from vsynth.__main__ import main as vsynth_main

    vsynth_main()


if __name__ == "__main__":
    main()
