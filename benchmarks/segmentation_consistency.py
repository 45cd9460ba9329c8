"""Semantic consistency on the CPU demo: a real-only demo model scored on generated images of known warp.

Trains the segmentation demo model on real data only (``python -m vsynth task=segmentation data.ratio=1.0``,
the demo's 300 iterations), and a second one whose photometric augmentation is strong enough to make it
robust to the demo generator's look (``--no-robust`` skips it). Then, per model, one sweep of

    python -m vsynth -m task=segmentation mode=consistency ckpt=<model> data.demo.effects.generated_warp=0,1,4

(demo worlds that differ only in the warp of their generated images: the injected, known effect), and prints
a Markdown table: the model's real test mIoU, and per warp mIoU on the source images, on the generated
images, the drop with its bootstrap interval, and the seconds per consistency run. Offline, CPU.

    .venv/bin/python benchmarks/segmentation_consistency.py [--out /tmp/vsynth-consistency] [--warps 0,1,4] \
        [--threads 1] [--no-robust]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vsynth.run.envinfo import cpu_model  # noqa: E402

#: the task's training transforms with a PhotoMetricDistortion strong enough to cover the demo generator's look
ROBUST_PIPELINE = ("task.train_pipeline=[{type: LoadImageFromFile}, {type: LoadAnnotations}, "
                   "{type: RandomResize, scale: [320, 240], ratio_range: [0.5, 2.0], keep_ratio: true}, "
                   "{type: RandomCrop, crop_size: [128, 128], cat_max_ratio: 0.75}, {type: RandomFlip, prob: 0.5}, "
                   "{type: PhotoMetricDistortion, brightness_delta: 100, contrast_range: [0.3, 1.5], "
                   "saturation_range: [0.2, 1.5]}, {type: PackSegInputs}]")


def _vsynth(args: list[str], out: Path, log: Path, threads: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.setdefault("VSYNTH_CACHE", str(out / "cache"))
    with open(log, "w") as f:
        code = subprocess.call([sys.executable, "-m", "vsynth", *args, f"trainer.threads={threads}"], stdout=f,
                               stderr=subprocess.STDOUT, env=env, cwd=out)
    if code != 0:
        sys.exit(f"failed ({code}): python -m vsynth {' '.join(args)}; see {log}")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/vsynth-consistency"))
    ap.add_argument("--warps", default="0,1,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-robust", action="store_true", help="only the plain real-only demo model")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    models = {"real-only demo model": []}
    if not args.no_robust:
        models["real-only, strong photometric augmentation"] = [ROBUST_PIPELINE]
    rows = []
    for i, (name, extra) in enumerate(models.items()):
        run = out / f"model{i}"
        if not (run / "checkpoints" / "best.pt").is_file():
            t0 = time.time()
            _vsynth(["task=segmentation", "data.ratio=1.0", *extra, f"hydra.run.dir={run}"], out, out / f"train{i}.log",
                    args.threads)
            print(f"trained {name} in {time.time() - t0:.0f} s", flush=True)
        test = json.loads((run / "metrics.json").read_text())["test/miou"]
        sweep = out / f"consistency{i}"
        _vsynth(["-m", "task=segmentation", "mode=consistency", f"ckpt={run / 'checkpoints' / 'best.pt'}",
                 f"data.demo.effects.generated_warp={args.warps}", f"hydra.sweep.dir={sweep}"], out,
                out / f"consistency{i}.log", args.threads)
        for job in sorted(p for p in sweep.iterdir() if (p / "consistency.json").is_file()):
            overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
            warp = float(next(o.split("=", 1)[1] for o in overrides if o.startswith("data.demo.effects.generated_warp=")))
            secs = json.loads((job / "status.json").read_text()).get("wall_time_s")
            rows.append((name, test, warp, json.loads((job / "consistency.json").read_text())["all"], secs))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    import torch

    print(f"\nMachine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}; commit {commit.strip()}; "
          f"{args.threads} torch thread(s)\n")
    print("| model | real test mIoU | warp | mIoU source | mIoU generated | drop (pp) [95 % CI] | retained | s per run |")
    print("|---|---|---|---|---|---|---|---|")
    for name, test, w, a, secs in sorted(rows, key=lambda r: (r[0], r[2])):
        print(f"| {name} | {_pct(test)} | {w:g} | {_pct(a['miou_source'])} | {_pct(a['miou_generated'])} | "
              f"{_pct(a['drop'])} [{_pct(a['drop_low'])}, {_pct(a['drop_high'])}] | "
              f"{a['retained']:.2f} | {secs:.0f} |")


if __name__ == "__main__":
    main()
