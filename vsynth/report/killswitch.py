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
                         "contribution is not distinguishable from zero with these seeds and test images.")
        notes += list(contribution.get("notes") or [])
        pw = contribution.get("power") or {}
        if pw.get("gate_detectable") is False:
            notes.append(f"This experiment could only detect an A - B of {pp(pw.get('mde'), signed=False)} or more "
                         f"(80 % power, 5 % level); the {pp(margin, signed=False)} gate is below that: a verdict near "
                         "the gate is not evidence either way. See 'Power' for what it would take.")
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
    lines += ["## Contribution of the treatment data", ""] + uncertainty_lines(con, metric, "A - B") + [""]
    lines += power_lines(con.get("power"), margin)
    for name, unc in (summary.get("delta_vs_base_uncertainty") or {}).items():
        if unc.get("low") is not None:
            lines += [f"- {name} - base: {pp(unc['delta'])} [{pp(unc['low'])}, {pp(unc['high'])}] "
                      f"({unc.get('training_noise', '?')} training noise)"]
    if summary.get("delta_vs_base_uncertainty"):
        lines.append("")
    audit = summary.get("keypoint_audit")
    if audit:
        lines += ["## Which keypoints moved (A vs B)", ""]
        for entry in audit.get("pairs", []):
            flagged = ", ".join(entry["flagged"]) or "none"
            lines.append(f"- seed {entry['seed']}: keypoints whose mean offset differs between A and B (5 % level, "
                         f"Holm-adjusted): **{flagged}**; picture: `{entry['png']}`")
        if audit.get("every_seed") is not None:
            lines.append(f"- flagged with every seed: {', '.join(audit['every_seed']) or 'none'}")
        lines.append("")
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


def uncertainty_lines(con: Mapping[str, Any], metric: str, label: str) -> list[str]:
    """An interval over seeds and test images, said plainly (see :mod:`vsynth.report.uncertainty`)."""
    if con.get("low") is None:
        why = f" (no interval: {con['reason']})" if con.get("reason") else ""
        return [f"{label} = **{pp(con.get('mean', con.get('delta')))}** {metric}{why}."]
    seeds = con.get("seeds") or {}
    var = con.get("variance") or {}
    out = [f"{label} = **{pp(con.get('mean', con.get('delta')))}** {metric}, {con.get('level', 0.95):.0%} interval "
           f"[{pp(con['low'])}, {pp(con['high'])}] from a two-level bootstrap over "
           f"{' and '.join(f'{n} {k} seed(s)' for k, n in seeds.items())} and {con.get('num_images', '?')} shared test "
           f"images ({con.get('samples', '?')} resamples); p = {con.get('p_value', float('nan')):.3g}."]
    if var.get("seed_share") is not None:
        out.append(f"Of its variance, {var['seed_share']:.0%} comes from training seeds and {var['image_share']:.0%} "
                   "from test images.")
    elif con.get("training_noise") == "unmeasured":
        out.append("Training noise is unmeasured (one seed per arm): the interval covers test images only.")
    return out


def power_lines(pw: Mapping[str, Any] | None, margin: float) -> list[str]:
    """The smallest effect the experiment could see, and what the gate would need."""
    if not pw:
        return []
    out = ["## Power", "", f"- Minimum detectable A - B (80 % power, 5 % two-sided): {pp(pw.get('mde'), signed=False)}."]
    if pw.get("reason"):
        return ["## Power", "", f"- {pw['reason'][0].upper()}{pw['reason'][1:]}.", ""]
    if pw.get("gate") is not None:
        ok = "can" if pw.get("gate_detectable") else "cannot"
        out.append(f"- This experiment {ok} detect the {pp(pw['gate'], signed=False)} gate.")
        sn, im = pw.get("seeds_needed") or {}, pw.get("images_needed") or {}
        if sn.get("seeds"):
            out.append(f"- Seeds per arm the gate needs at {sn.get('images')} test images: {sn['seeds']}.")
        elif sn.get("reason"):
            out.append(f"- Seeds for the gate: {sn['reason']}.")
        if im.get("images"):
            out.append(f"- Test images the gate needs at the current seeds: {im['images']}"
                       + (f" ({im['reason']})" if im.get("reason") else "") + ".")
        elif im.get("reason"):
            out.append(f"- Test images for the gate: {im['reason']}.")
        for a in pw.get("assumptions") or []:
            out.append(f"- Assumed: {a}.")
    return out + [""]


def write_outputs(root: Path, summary: Mapping[str, Any], base: ArmSummary, control: ArmSummary,
                  treatment: ArmSummary, metrics: Sequence[str], title: str = "Kill switch") -> None:
    from vsynth.run.atomic import write_json, write_text

    write_json(root / "killswitch.json", summary)
    write_text(root / "report.md", render_report(summary, base, control, treatment, metrics, title=title))


