"""Every arm of a sweep against a reference arm: the delta with an interval over seeds and test images.

A sweep over arms and seeds (``python -m vsynth -m arm=A,B,base seed=0,1,2``) answers the kill
switch's question for every arm at once. The plain table of the sweep report gives each arm's mean
with a t interval over its seeds' metrics; that interval ignores the test images and says nothing
about differences. Here, for every group of jobs that differ only in the arm and the seed, every arm
is compared with the reference arm (the control ``B`` when it is swept, else the first arm in sorted
order; ``--reference``) by the two-level bootstrap of :func:`vsynth.report.uncertainty.compare_arms`
on the runs' per-image test files (:mod:`vsynth.report.run_states`): the delta, its interval, the
shares of the variance from seeds and from test images, and the smallest delta the sweep could
detect (80 % power, 5 % level). Runs without per-image files (a task that keeps none) are left to the
plain intervals, and the comparison says why.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from vsynth.errors import ConfigError, VsynthError
from vsynth.report.jobs import SEED_KEYS, swept_keys

#: the swept key whose values are arms
ARM_KEY = "arm"
CONTROL = "B"
CSV_COLUMNS = ["group", "metric", "arm", "reference", "delta", "low", "high", "level", "p_value", "seeds",
               "reference_seeds", "num_images", "seed_share", "image_share", "mde", "training_noise", "reason"]


def reference_arm(arms: Sequence[str], preferred: str | None = None) -> str:
    """``preferred`` if given (ConfigError naming --reference when it is not an arm), else B, else the first."""
    arms = sorted(arms)
    if preferred:
        if preferred not in arms:
            raise ConfigError(f"--reference {preferred}: not an arm of this sweep (arms: {', '.join(arms)})")
        return preferred
    return CONTROL if CONTROL in arms else arms[0]


def _groups(rows: list[dict[str, Any]], arm_key: str) -> dict[tuple[str, ...], dict[str, list[str]]]:
    """Done jobs by (the other swept keys' values) -> arm -> job names (one per seed)."""
    key = f"override:{arm_key}"
    others = [k for k in swept_keys(rows) if k != key and k.split(":", 1)[1] not in SEED_KEYS]
    out: dict[tuple[str, ...], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("status") == "done" and r.get(key) not in (None, ""):
            label = tuple(f"{k.split(':', 1)[1]}={r.get(k, '')}" for k in others)
            out[label][str(r[key])].append(str(r["job"]))
    return out


def compare_arms_of_sweep(sweep_dir: Path, rows: list[dict[str, Any]], metrics: Sequence[str], *,
                          arm_key: str = ARM_KEY, reference: str | None = None, split: str = "test",
                          samples: int = 1000, seed: int = 0, level: float = 0.95, gate: float | None = 0.02,
                          sigmas: Sequence[float] | None = None) -> dict[str, Any] | None:
    """Every arm vs the reference, per group and metric; None when the sweep does not vary ``arm_key``
    or none of its runs kept per-image ``split`` files."""
    from vsynth.report.run_states import run_files, run_state
    from vsynth.report.uncertainty import compare_arms

    if f"override:{arm_key}" not in swept_keys(rows):
        return None
    groups = _groups(rows, arm_key)
    jobs = [j for by_arm in groups.values() for names in by_arm.values() for j in names]
    with_files = []
    for j in jobs:
        try:
            run_files(sweep_dir / j, split)
            with_files.append(j)
        except VsynthError:
            pass
    if not with_files:
        return None
    cache: dict[str, Any] = {}

    def state(job: str) -> Any:
        if job not in cache:
            try:
                cache[job] = run_state(sweep_dir / job, split, sigmas)
            except VsynthError as e:
                cache[job] = e
        if isinstance(cache[job], VsynthError):
            raise cache[job]
        return cache[job]

    names = [m.split("/", 1)[1] for m in metrics if m.startswith(f"{split}/")]
    out_groups = []
    for label, by_arm in sorted(groups.items()):
        ref = reference_arm(list(by_arm), reference)
        comparisons = []
        for metric in names:
            for arm in sorted(a for a in by_arm if a != ref):
                entry: dict[str, Any] = {"metric": metric, "arm": arm, "reference": ref}
                try:
                    res = compare_arms([state(j) for j in by_arm[arm]], [state(j) for j in by_arm[ref]],
                                       metric=metric, names=(arm, ref), samples=samples, seed=seed, level=level,
                                       gate=gate)
                    res["runs"] = {arm: by_arm[arm], ref: by_arm[ref]}
                    entry.update(res)
                except VsynthError as e:
                    entry["reason"] = str(e).splitlines()[0]
                comparisons.append(entry)
        out_groups.append({"group": list(label), "reference": ref, "comparisons": comparisons})
    return {"arm_key": arm_key, "split": split, "level": level, "samples": samples, "gate": gate,
            "method": "two-level bootstrap (seeds within each arm, then shared test images); t interval with "
                      "Welch-Satterthwaite df (vsynth.report.uncertainty)",
            "groups": out_groups}


def _pp(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f} pp"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def comparison_lines(result: dict[str, Any]) -> list[str]:
    """The report.md section: one table per group, a row per metric and arm."""
    level = result["level"]
    lines = []
    for g in result["groups"]:
        title = f"## Every {result['arm_key']} vs {g['reference']}" + (f" ({', '.join(g['group'])})" if g["group"] else "")
        lines += [title, "",
                  f"Delta of each arm's mean over its seeds minus the reference's, on the {result['split']} split; "
                  f"{level:.0%} interval from a two-level bootstrap (seeds, then shared test images, "
                  f"{result['samples']} resamples); the shares say how much of its variance comes from training "
                  "seeds and from test images; MDE: the smallest delta this sweep detects with 80 % power at the "
                  "5 % level.", "",
                  f"| metric | arm | seeds | Δ vs {g['reference']} | {level:.0%} interval | p | from seeds | "
                  "from images | MDE | training noise |", "|---|---|---|---|---|---|---|---|---|---|"]
        notes: list[str] = []
        for c in g["comparisons"]:
            if c.get("low") is None:
                lines.append(f"| {c['metric']} | {c['arm']} | | | no interval: {c.get('reason', '?')} | | | | | |")
                continue
            var, seeds = c["variance"], c["seeds"]
            lines.append(f"| {c['metric']} | {c['arm']} | {seeds[c['arm']]} vs {seeds[c['reference']]} | "
                         f"{_pp(c['delta'])} | [{_pp(c['low'])}, {_pp(c['high'])}] | {c['p_value']:.3g} | "
                         f"{_share(var['seed_share'])} | {_share(var['image_share'])} | "
                         f"{c['power']['mde'] * 100:.2f} pp | {c['training_noise']} |")
            notes += [n for n in c.get("notes", []) if n not in notes and "of the variance comes" not in n]
        lines.append("")
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    return lines


def write_comparisons(sweep_dir: Path, result: dict[str, Any]) -> None:
    """comparisons.json (everything) and comparisons.csv (one row per group, metric and arm)."""
    from vsynth.eval.__main__ import jsonable
    from vsynth.run.atomic import atomic_write, write_json

    write_json(sweep_dir / "comparisons.json", jsonable(result))
    rows = []
    for g in result["groups"]:
        for c in g["comparisons"]:
            var, pw, seeds = c.get("variance") or {}, c.get("power") or {}, c.get("seeds") or {}
            rows.append({"group": ";".join(g["group"]), "metric": c["metric"], "arm": c["arm"],
                         "reference": c["reference"], "delta": c.get("delta"), "low": c.get("low"),
                         "high": c.get("high"), "level": c.get("level"), "p_value": c.get("p_value"),
                         "seeds": seeds.get(c["arm"]), "reference_seeds": seeds.get(c["reference"]),
                         "num_images": c.get("num_images"), "seed_share": var.get("seed_share"),
                         "image_share": var.get("image_share"), "mde": pw.get("mde"),
                         "training_noise": c.get("training_noise"), "reason": c.get("reason", "")})

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_COLUMNS})

    atomic_write(sweep_dir / "comparisons.csv", write)
