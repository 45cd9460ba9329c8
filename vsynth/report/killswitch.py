"""The kill switch's answer: the verdict rule, the arms' summary, A - B with its interval, report.md.

The experiment itself (launching the baseline, control and treatment runs) is
:mod:`vsynth.experiments.killswitch`; this module turns their metrics and per-image files into
``killswitch.json`` and ``report.md``.

The verdict is the users' gate: PASS when A >= base + margin, MARGINAL when A is in
[base, base + margin), FAIL when A < base. The report always shows the control next to it: a
gate the control alone clears says nothing about the treatment (the lesson of the stale
0.2199 baseline), and A - B with its interval is the number to read.
"""


from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vsynth.errors import ConfigError

log = logging.getLogger("vsynth.killswitch")

PASS, MARGINAL, FAIL = "PASS", "MARGINAL", "FAIL"
#: comparisons are made on values rounded to this many decimals, so 0.2399 >= 0.2199 + 0.02 holds
_DECIMALS = 9


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
                "mean": {m: finite(self.mean(m)) for m in metrics}, "std": {m: finite(self.spread(m)) for m in metrics}}


def finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def pp(x: float | None, signed: bool = True) -> str:
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
        "delta_vs_base": {arm.name: {m: finite(arm.mean(m) - base.mean(m)) for m in metrics}
                          for arm in (control, treatment)},
        "contribution": {"metric": metric, "mean": finite(a - c), **(dict(contribution) if contribution else {})},
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
        delta = "" if arm is base else pp(arm.mean(metric) - base.mean(metric))
        lines.append(f"| {label}: {arm.name} | " + " | ".join(_val(arm, m) for m in metrics)
                     + f" | {delta} | {len(arm.seeds) or '-'} | {arm.origin} |")
    lines.append("")
    lines += ["Δ vs base for every metric:", ""]
    for arm in (control, treatment):
        lines.append(f"- {arm.name}: " + ", ".join(f"{m} {pp(arm.mean(m) - base.mean(m))}" for m in metrics))
    lines.append("")
    con = summary["contribution"]
    ci = ""
    if con.get("low") is not None:
        ci = (f", {con.get('level', 0.95):.0%} paired-bootstrap interval [{pp(con['low'])}, {pp(con['high'])}] "
              f"over {con.get('num_images', '?')} test images ({con.get('samples', '?')} resamples)")
    elif con.get("reason"):
        ci = f" (no interval: {con['reason']})"
    lines += ["## Contribution of the treatment data", "",
              f"A - B = **{pp(con.get('mean'))}** {metric}{ci}.", ""]
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


def write_outputs(root: Path, summary: Mapping[str, Any], base: ArmSummary, control: ArmSummary,
                  treatment: ArmSummary, metrics: Sequence[str], title: str = "Kill switch") -> None:
    from vsynth.run.atomic import write_json, write_text

    write_json(root / "killswitch.json", summary)
    write_text(root / "report.md", render_report(summary, base, control, treatment, metrics, title=title))


