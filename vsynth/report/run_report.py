"""report.md for one run folder: what ran, on what mix, how it scored, with a learning curve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from vsynth.run.atomic import write_text
from vsynth.run.context import RunContext


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def load_history(run_dir: Path) -> list[dict[str, Any]]:
    p = run_dir / "metrics.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def plot_history(history: list[dict[str, Any]], keys: list[str], out: Path) -> bool:
    """Validation metrics over training steps (PNG); False when there is nothing to plot."""
    series = {k: [(h["step"], h[k]) for h in history if isinstance(h.get(k), (int, float))] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for k, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("metric")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return True


def write_run_report(ctx: RunContext, metrics: Mapping[str, Any], extra: Mapping[str, Any],
                     status: Mapping[str, Any]) -> None:
    cfg = ctx.cfg
    history = load_history(ctx.dir)
    lines = [f"# Run `{cfg.name}`", ""]
    lines += [
        f"- task: **{cfg.task.name}**, arm: **{cfg.arm.name}** ({cfg.arm.get('description', '')}), mode: {cfg.mode}",
        f"- model: {cfg.model.get('name', '?')}, data: {cfg.data.get('name', '?')}, seed: {cfg.seed}",
        f"- status: {status.get('state')}, wall time: {status.get('wall_time_s', 0):.1f}s, host: {status.get('host')}",
        f"- command: `{' '.join(status.get('argv') or [])}`",
        "",
    ]
    comp = extra.get("composition")
    if comp:
        lines += ["## Data composition", "", f"- {comp.get('sampler')}",
                  f"- samples trained on, by source: {comp.get('samples_per_source')}"]
        for label, n in (comp.get("batches_by_composition") or {}).items():
            lines.append(f"- {n} batches of `{label}`")
        lines.append("")
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    if scalars:
        lines += ["## Final metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_num(v)} |" for k, v in scalars.items()]
        lines.append("")
    if history:
        keys = [k for k in history[-1] if k.startswith("val/") and isinstance(history[-1][k], (int, float))][:4]
        lines += ["## Validation during training", "", "| step | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]
        for h in history:
            lines.append(f"| {h['step']} | " + " | ".join(_num(h.get(k, '')) for k in keys) + " |")
        lines.append("")
        if ctx.is_main and plot_history(history, keys, ctx.dir / "learning_curve.png"):
            lines += ["![validation metrics](learning_curve.png)", ""]
    for section in extra.get("sections") or ():  # a mode's own findings (e.g. mode=consistency), as markdown lines
        lines += [*section, ""]
    samples = sorted((ctx.dir / "samples").glob("*.png")) if (ctx.dir / "samples").is_dir() else []
    if samples:
        lines += ["## Samples", ""] + [f"![{p.stem}](samples/{p.name})" for p in samples[:8]] + [""]
    write_text(ctx.dir / "report.md", "\n".join(lines))
