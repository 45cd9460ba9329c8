"""Sum up a sweep: one row per job in summary.csv, tables and plots in report.md.

Works on a finished, partial or still-running sweep: it only reads what each job folder holds
(``.hydra/overrides.yaml``, ``status.json``, ``metrics.json``, ``composition.json``, and
``consistency.json`` in a job or a folder inside it: :mod:`vsynth.report.consistency`). Plots:
for a numeric swept key (e.g. ``data.ratio``), the metric against that key with mean and spread
over seeds; for a categorical key (e.g. ``arm``), the values side by side with 95% intervals over
seeds (plain t intervals over the seeds' metrics).

When the sweep varies the arm (``arm=A,B,base``) and its runs kept their per-image test files,
every arm is also compared with a reference arm (the control ``B`` if swept, else the first;
:mod:`vsynth.report.sweep_compare`): its delta with a two-level interval over seeds and test
images, the variance shares and the smallest detectable delta, in report.md and comparisons.csv /
comparisons.json.
"""

from __future__ import annotations

import csv
import logging
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any


from vsynth.report.jobs import SEED_KEYS, find_jobs, job_overrides, swept_keys
from vsynth.run.atomic import atomic_write, write_text
from vsynth.run.status import effective_state

log = logging.getLogger("vsynth.report")

HEADLINE_PREFERENCE = ["test/miou", "test/oks_map", "test/ap", "test/ap50", "test/oks_map50", "test/pck@0.05",
                       "test/aacc", "test/acc", "consistency/miou_generated", "consistency/drop"]  # last: mode=consistency jobs
def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for job in find_jobs(sweep_dir):
        status = _read_json(job / "status.json") or {}
        metrics = _read_json(job / "metrics.json") or {}
        comp = _read_json(job / "composition.json") or {}
        row: dict[str, Any] = {"job": job.name}
        row.update({f"override:{k}": v for k, v in job_overrides(job).items()})
        row["status"] = effective_state(status or None)  # "stale" for a running job whose process is gone
        row["error"] = status.get("error") or ""
        row["wall_time_s"] = status.get("wall_time_s", "")
        row["attempts"] = status.get("attempts", "")
        samples = comp.get("samples_per_source") or {}
        row["composition"] = ";".join(f"{k}={v}" for k, v in sorted(samples.items()))
        exp = comp.get("expected_per_batch")
        row["per_batch"] = ";".join(f"{k}={v}" for k, v in exp.items()) if exp else ""
        row.update({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        rows.append(row)
    return rows


def write_summary_csv(rows: list[dict[str, Any]], path: Path) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    fixed = ["job"] + [k for k in keys if k.startswith("override:")] + ["status", "error", "wall_time_s", "attempts",
                                                                        "composition", "per_batch"]
    cols = fixed + sorted(k for k in keys if k not in fixed)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in cols})

    atomic_write(path, write)


def headline_metrics(rows: list[dict[str, Any]], limit: int = 3) -> list[str]:
    present = {k for r in rows for k in r if "/" in k and isinstance(r[k], (int, float))}
    chosen = [m for m in HEADLINE_PREFERENCE if m in present]
    chosen += sorted(k for k in present if k.startswith("test/") and k not in chosen and k.count("/") == 1)
    return chosen[:limit]


def _num(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample std and half-width of a 95% t-interval (0 with one value)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, 0.0, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    from scipy import stats

    return m, sd, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def group(rows: list[dict[str, Any]], key: str, metric: str) -> dict[tuple, dict[str, list[float]]]:
    """metric values by (other swept keys) -> value of ``key``, over seeds, done jobs only."""
    swept = swept_keys(rows)
    others = [k for k in swept if k != key and k.split(":", 1)[1] not in SEED_KEYS]
    out: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("status") != "done" or not isinstance(r.get(metric), (int, float)):
            continue
        label = tuple(f"{k.split(':', 1)[1]}={r.get(k, '')}" for k in others)
        out[label][str(r.get(key, ""))].append(float(r[metric]))
    return out


def plot_key(rows, key: str, metric: str, out: Path) -> bool:
    data = group(rows, key, metric)
    if not data:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = key.split(":", 1)[1]
    numeric = all(_num(v) is not None for g in data.values() for v in g)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    if numeric:
        for label, by in sorted(data.items()):
            xs = sorted(by, key=float)
            stats_ = [mean_ci(by[x]) for x in xs]
            m = [s[0] for s in stats_]
            sd = [s[1] for s in stats_]
            x = [float(v) for v in xs]
            line = ax.plot(x, m, marker="o", lw=2, label=", ".join(label) or metric)[0]
            ax.fill_between(x, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], alpha=0.2,
                            color=line.get_color())
            for xi, (mi, _, _), vals in zip(x, stats_, (by[v] for v in xs)):
                ax.scatter([xi] * len(vals), vals, s=10, color=line.get_color(), alpha=0.5)
        ax.set_xlabel(name)
        ax.set_title(f"{metric} vs {name} (mean ± std over seeds)")
    else:
        labels = sorted({v for g in data.values() for v in g})
        width = 0.8 / max(1, len(data))
        for gi, (label, by) in enumerate(sorted(data.items())):
            xs = [i + gi * width for i, lab in enumerate(labels) if lab in by]
            st = [mean_ci(by[lab]) for lab in labels if lab in by]
            ax.bar(xs, [s[0] for s in st], width=width, yerr=[s[2] for s in st], capsize=4,
                   label=", ".join(label) or metric)
        ax.set_xticks([i + width * (len(data) - 1) / 2 for i in range(len(labels))], labels)
        ax.set_xlabel(name)
        ax.set_title(f"{metric} by {name} (mean, 95% CI over seeds)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if len(data) > 1 or any(data):
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png"))  # jobs on other nodes may refresh at once
    plt.close(fig)
    return True


def write_sweep_report(sweep_dir: str | Path, compare: bool = True, options: dict[str, Any] | None = None) -> Path:
    """Write summary.csv, report.md and plot PNGs into ``sweep_dir``; returns report.md's path.

    ``compare``: also compare every arm with the reference arm on the runs' per-image test files
    (:func:`vsynth.report.sweep_compare.compare_arms_of_sweep`, ``options`` passed to it).
    """
    sweep_dir = Path(sweep_dir)
    rows = collect(sweep_dir)
    write_summary_csv(rows, sweep_dir / "summary.csv")
    counts = defaultdict(int)
    for r in rows:
        counts[r["status"]] += 1
    metrics = headline_metrics(rows)
    swept = swept_keys(rows)
    lines = [f"# Sweep `{sweep_dir.name}`", "",
             f"{len(rows)} jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), "",
             "Swept: " + (", ".join(k.split(":", 1)[1] for k in swept) or "nothing"), ""]
    for key in [k for k in swept if k.split(":", 1)[1] not in SEED_KEYS]:
        name = key.split(":", 1)[1]
        for metric in metrics:
            data = group(rows, key, metric)
            if not data:
                continue
            lines += [f"## {metric} by {name}", "", f"| {name} | group | n | mean | std | 95% CI |", "|---|---|---|---|---|---|"]
            for label, by in sorted(data.items()):
                for v in sorted(by, key=lambda x: (_num(x) is None, _num(x) or 0, x)):
                    m, sd, hw = mean_ci(by[v])
                    lines.append(f"| {v} | {', '.join(label) or '-'} | {len(by[v])} | {m:.4f} | {sd:.4f} | "
                                 f"[{m - hw:.4f}, {m + hw:.4f}] |")
            png = f"{metric.replace('/', '_').replace('@', '_')}_by_{name.replace('/', '_')}.png"
            if plot_key(rows, key, metric, sweep_dir / png):
                lines += ["", f"![{metric} by {name}]({png})"]
            lines.append("")
    from vsynth.report.consistency import sweep_section

    lines += sweep_section(sweep_dir, find_jobs(sweep_dir), [k.split(":", 1)[1] for k in swept])
    if compare:
        from vsynth.report.sweep_compare import compare_arms_of_sweep, comparison_lines, write_comparisons

        comparisons = compare_arms_of_sweep(sweep_dir, rows, metrics, **(options or {}))
        if comparisons is not None:
            write_comparisons(sweep_dir, comparisons)
            lines += comparison_lines(comparisons)
    lines += ["## Jobs", "", "| " + " | ".join(["job", "status", *metrics, "wall time (s)", "error"]) + " |",
              "|---|---|" + "---|" * len(metrics) + "---|---|"]
    for r in rows:
        vals = [f"{r[m]:.4f}" if isinstance(r.get(m), (int, float)) else "" for m in metrics]
        wt = r.get("wall_time_s")
        lines.append("| " + " | ".join([r["job"], r["status"], *vals, str(wt), str(r["error"])]) + " |")
    lines.append("")
    report = sweep_dir / "report.md"
    write_text(report, "\n".join(lines))
    return report


def refresh_sweep(run_dir: Path) -> None:
    """A run written inside a sweep's job folder (e.g. ``<job>/consistency``) rewrites that sweep's report."""
    job, root = Path(run_dir).parent, Path(run_dir).parent.parent
    try:
        if (root / "summary.csv").is_file() and job in find_jobs(root):
            log.info("Sweep report: %s", write_sweep_report(root))
    except Exception as e:  # noqa: BLE001  (the run's own records are written; a report problem must not fail it)
        log.warning("could not refresh the sweep report of %s: %s", root, e)
