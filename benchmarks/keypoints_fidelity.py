"""Fidelity: vsynth's loop vs ultralytics' own trainer, same model, data, epochs and recipe.

Trains YOLO11n-pose from its YAML on the demo world's real train split twice,

  vsynth       python -m vsynth task=keypoints arm=base ...                     (vsynth's loop)
  ultralytics  YOLO('yolo11n-pose.yaml').train(data=<the same data YAML>, ...)  (ultralytics' trainer)

and, optionally, ultralytics with ``nbs=<batch>`` (no gradient accumulation), then scores every
resulting checkpoint with the *same* vsynth evaluator on the *same* real test split
(``python -m vsynth mode=eval ckpt=...``), and prints a Markdown table with OKS-mAP, OKS-mAP@50,
PCK@0.05 and seconds per epoch. Everything runs on the CPU, offline.

    .venv/bin/python benchmarks/keypoints_fidelity.py [--epochs 15] [--imgsz 256] [--batch 8] \
        [--lr 0.002] [--workers 1] [--out /tmp/vsynth-fidelity] [--no-nbs-variant]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vsynth.run.envinfo import cpu_model  # noqa: E402


THREADS = {"n": None}


def _env(out: Path) -> dict[str, str]:
    e = dict(os.environ)
    if THREADS["n"]:
        e["OMP_NUM_THREADS"] = e["MKL_NUM_THREADS"] = str(THREADS["n"])
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("VSYNTH_CACHE", str(out / "cache"))
    e.update(YOLO_OFFLINE="true", YOLO_VERBOSE="false", YOLO_CONFIG_DIR=str(out / "ultralytics-settings"))
    return e


def _vsynth(args: list[str], out: Path, log: Path) -> int:
    with open(log, "w") as f:
        return subprocess.call([sys.executable, "-m", "vsynth", *args], stdout=f, stderr=subprocess.STDOUT,
                               env=_env(out), cwd=out)


def _train_seconds(run_log: str) -> float:
    """Seconds from the start of training to the last validation (run.log timestamps)."""
    from datetime import datetime

    def ts(line: str) -> float:
        return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    lines = run_log.splitlines()
    start = next(ts(ln) for ln in lines if "] - Training " in ln and " steps (" in ln)
    end = [ts(ln) for ln in lines if "] - eval @ step" in ln][-1]
    return end - start


ULTRALYTICS_SCRIPT = r"""
import json, sys, time
from ultralytics import YOLO
cfg = json.loads(sys.argv[1])
t0 = time.time()
YOLO("yolo11n-pose.yaml").train(**cfg)
print("ULTRALYTICS_WALL", time.time() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/vsynth-fidelity"))
    ap.add_argument("--no-nbs-variant", action="store_true", help="skip ultralytics with nbs=batch")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                    help="torch threads for both trainers (default: cores - 1, what ultralytics' trainer uses on CPU)")
    a = ap.parse_args()
    THREADS["n"] = a.threads
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # yolo11n from fresh weights (no demo init) and the EMA the recorded figures were measured with
    common = ["task=keypoints", "model=yolo11n_pose", "data.demo.init=null", f"task.imgsz={a.imgsz}", f"seed={a.seed}",
              "trainer.progress_bar=false", "trainer.ema.tau=100"]

    # 1. vsynth's loop (also generates the demo world and tells us the data YAML)
    rd = out / "vsynth"
    t0 = time.time()
    code = _vsynth([*common, "arm=base", f"trainer.length={a.epochs}", f"trainer.batch_size={a.batch}",
                    "trainer.val.interval=1",
                    f"trainer.workers={a.workers}", f"trainer.optimizer.lr={a.lr}", f"hydra.run.dir={rd}"],
                   out, out / "vsynth.log")
    v_wall = time.time() - t0
    if code:
        sys.exit(f"vsynth run failed ({code}); see {out / 'vsynth.log'}")
    log = (rd / "run.log").read_text()
    data_yaml = next(Path(ln.split("demo world: ", 1)[1].strip()) for ln in log.splitlines()
                     if "demo world: /" in ln) / "keypoints" / "real" / "data.yaml"
    train_s = _train_seconds(log)

    # 2. ultralytics' trainer, same model YAML, data, epochs, imgsz, batch, optimizer, lr, close_mosaic
    runs = {"vsynth loop": {"ckpt": rd / "checkpoints" / "best.pt", "last": rd / "checkpoints" / "last.pt",
                            "wall": v_wall, "epochs": a.epochs, "train_s": train_s}}
    variants = [("ultralytics trainer", {})]
    if not a.no_nbs_variant:
        variants.append((f"ultralytics trainer, nbs={a.batch}", {"nbs": a.batch}))
    for label, extra in variants:
        name = "ul" if not extra else f"ul_nbs{a.batch}"
        cfg = dict(data=str(data_yaml), epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, optimizer="AdamW", lr0=a.lr,
                   workers=a.workers, device="cpu", plots=False, val=True, amp=False, project=str(out), name=name,
                   exist_ok=True, seed=a.seed, close_mosaic=1, verbose=False, **extra)
        t0 = time.time()
        with open(out / f"{name}.log", "w") as f:
            code = subprocess.call([sys.executable, "-c", ULTRALYTICS_SCRIPT, json.dumps(cfg)], stdout=f,
                                   stderr=subprocess.STDOUT, env=_env(out), cwd=out)
        wall = time.time() - t0
        if code:
            sys.exit(f"ultralytics run failed ({code}); see {out / f'{name}.log'}")
        res = list(csv.DictReader(open(out / name / "results.csv")))
        runs[label] = {"ckpt": out / name / "weights" / "best.pt", "last": out / name / "weights" / "last.pt",
                       "wall": wall, "epochs": len(res), "train_s": float(res[-1].get("time", "nan"))}

    # 3. one evaluator for all: vsynth mode=eval on the demo real test split
    rows = []
    for label, r in runs.items():
        for which in ("ckpt", "last"):
            ed = out / f"eval-{label.replace(' ', '_').replace(',', '').replace('=', '')}-{which}"
            code = _vsynth([*common, "arm=base", "mode=eval", f"ckpt={r[which]}", f"hydra.run.dir={ed}"], out,
                           out / f"{ed.name}.log")
            if code:
                sys.exit(f"evaluation of {r[which]} failed ({code}); see {out / (ed.name + '.log')}")
            m = json.loads((ed / "metrics.json").read_text())
            r[which + "_metrics"] = m
        rows.append((label, r))

    print(f"\nMachine: {os.cpu_count()} CPU cores ({cpu_model()}), torch CPU with {a.threads} thread(s); demo real train "
          f"split, {a.epochs} epochs, imgsz {a.imgsz}, batch {a.batch}, AdamW lr {a.lr}, workers {a.workers}\n")
    print("| trainer | checkpoint | test OKS-mAP | OKS-mAP@50 | PCK@0.05 | box mAP@50 | s/epoch (train+val) |")
    print("|---|---|---|---|---|---|---|")
    for label, r in rows:
        per_epoch = (r["train_s"] or r["wall"]) / max(1, r["epochs"])
        for which, tag in (("ckpt", "best"), ("last", "last")):
            m = r[which + "_metrics"]
            print(f"| {label} | {tag} | {m['test/oks_map']:.4f} | {m['test/oks_map50']:.4f} | {m['test/pck@0.05']:.4f} "
                  f"| {m['test/box_map50']:.4f} | {per_epoch:.1f} |")
    json.dump({label: {k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for label, r in rows},
              open(out / "fidelity.json", "w"), indent=2, default=str)
    print(f"\n(details: {out / 'fidelity.json'})")


if __name__ == "__main__":
    main()
