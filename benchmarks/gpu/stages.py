"""The stages of the GPU check, each run by ``check.py`` in a process of its own (so a hang is killed
without losing the other stages): ``python benchmarks/gpu/stages.py STAGE [--task T] --out DIR
--result FILE.json [--cpu-dry-run]``.

Stages (``T`` = keypoints | detection | segmentation):

* ``env``: torch, CUDA, the GPU and every backend's version (fails loudly without CUDA);
* ``data:T``: the demo world at the check's sizes (later stages reuse it);
* ``train:T``: vsynth's own loop (``Trainer`` setup + train, the real parts) with fp16 + grad scaler and
  with bf16: images/s between the end of the warm-up steps and the last step (device synchronized at
  both ends only) and peak GPU memory (``torch.cuda.max_memory_allocated``);
* ``backend:T``: the backend's own trainer on the same model, data and batch (``backends.py``);
* ``resume:T``: uninterrupted vs stopped at a step and resumed, and a second uninterrupted run as the
  device's own run-to-run difference; the EMA on the device;
* ``cli:T``: the demo through the command line (``python -m vsynth ... device=cuda trainer.amp=fp16``):
  exit code, status and test metrics.

Each stage writes what it has measured to ``--result`` as it goes, so a stage stopped by its deadline
still reports its finished parts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.gpu.common import (  # noqa: E402
    TASKS, Results, Skip, Stopwatch, compose, device_for, iter_overrides, make_task, make_trainer, plan)

# ---- stages --------------------------------------------------------------------------------------
def stage_env(res: Results, dry: bool) -> None:
    import platform

    import torch

    res.put("python", platform.python_version())
    res.put("torch", torch.__version__)
    res.put("cuda_available", torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        res.put("gpu", {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}",
                        "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
                        "cudnn": torch.backends.cudnn.version(), "bf16": torch.cuda.is_bf16_supported()})
    elif not dry:
        raise RuntimeError("CUDA is not available to torch here (torch.cuda.is_available() is False)")
    versions = {}
    for mod, dist in (("ultralytics", "ultralytics"), ("yolox", "pixeltable-yolox"), ("mmseg", "onedl-mmsegmentation"),
                      ("mmcv", "mmcv-lite"), ("mmengine", "mmengine"), ("hydra", "hydra-core"), ("omegaconf", "omegaconf"),
                      ("submitit", "submitit"), ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
                      ("pycocotools", "pycocotools"), ("scipy", "scipy"), ("torchvision", "torchvision"), ("cv2", "opencv-python"),
                      ("tensorboard", "tensorboard"), ("numpy", "numpy")):
        __import__(mod)  # an import error fails the stage: the wheel set is incomplete
        from importlib.metadata import version

        versions[dist] = version(dist)
    res.put("versions", versions)


def stage_data(res: Results, task: str, dry: bool, out: Path) -> None:
    from vsynth.data.arms import build_sources

    p = plan(task, dry)
    cfg = compose(p["overrides"])
    t, ctx = make_task(cfg, out / "runs" / f"data-{task}", device_for(dry))
    t0 = time.perf_counter()
    sources = build_sources(cfg, t, ctx)
    res.put("train_images", {k: len(v) for k, v in sources.items()})
    res.put("val_images", len(t.eval_dataset("val")))
    res.put("seconds", round(time.perf_counter() - t0, 1))


def timed_vsynth(task: str, amp: str, dry: bool, out: Path) -> dict[str, Any]:
    """vsynth's loop, timed between steps (the parts as in a real run; no test evaluation at the end)."""
    import torch

    from vsynth.train.parts import Part

    p = plan(task, dry)
    device = device_for(dry)
    if amp == "fp16" and device.type != "cuda":
        raise Skip("fp16 autocast needs CUDA (vsynth runs fp32 on a CPU); bf16 runs instead")
    t = make_trainer(iter_overrides(p, p["warmup"] + p["steps"], amp), out / "runs" / f"train-{task}-{amp}", device)
    watch = Stopwatch(device, p["warmup"], p["steps"], p["batch"])

    class Timing(Part):
        def before_train(self, tr):
            watch.start()

        def after_step(self, tr):  # first of the parts: before the final validation
            watch.tick()

    t.setup()
    t.parts.insert(0, Timing())
    t.resume()
    t.train()
    r = watch.result()
    r.update({"amp": t.amp, "speed": t.speed.describe(), "steps": t.state.step,
              "scaler_scale": float(t.state.scaler.get_scale()) if t.state.scaler.is_enabled() else None})
    params = [v for v in t.state.model.state_dict().values() if v.dtype.is_floating_point]
    r["weights_finite"] = bool(all(torch.isfinite(v).all() for v in params))
    if not r["weights_finite"]:
        raise RuntimeError(f"non-finite weights after {t.state.step} steps with amp={amp}")
    return r


def stage_train(res: Results, task: str, dry: bool, out: Path) -> None:
    res.put("plan", plan(task, dry))
    for amp in ("fp16", "bf16"):
        res.attempt(amp, lambda amp=amp: timed_vsynth(task, amp, dry, out))


def stage_backend(res: Results, task: str, dry: bool, out: Path) -> None:
    from benchmarks.gpu import backends

    p = plan(task, dry)
    res.put("plan", p)
    for amp in ("fp16", "bf16"):
        res.attempt(amp, lambda amp=amp: backends.run(task, amp, p, device_for(dry), out))


def _diff(a: dict, b: dict) -> dict[str, float]:
    """Largest absolute and relative L2 difference over the floating-point tensors of two state dicts."""
    import torch

    num = den = 0.0
    worst = 0.0
    for k, v in a.items():
        if not v.dtype.is_floating_point:
            continue
        d = (v.float() - b[k].float())
        worst = max(worst, float(d.abs().max()) if d.numel() else 0.0)
        num += float((d * d).sum())
        den += float((v.float() * v.float()).sum())
    return {"max_abs": worst, "rel_l2": math.sqrt(num / den) if den else 0.0}


def stage_resume(res: Results, task: str, dry: bool, out: Path) -> None:
    import torch

    from vsynth.train.trainer import TrainingInterrupted

    p = plan(task, dry)
    device = device_for(dry)
    amp = "bf16" if dry else "fp16"
    total, stop = (4, 2) if dry else (12, 6)
    over = [*iter_overrides(p, total, amp), "trainer.ema.enabled=true", "trainer.ema.tau=3"]
    if task == "keypoints":
        # ultralytics' mosaic draws partners from a buffer of the images the loading process read before, so
        # a keypoints run resumed mid-epoch is not the uninterrupted one (found by this check's CPU dry run);
        # at an epoch boundary, with loader workers (fresh each epoch), it is. Epochs of 2 steps here.
        stop = 2
        total = stop + (2 if dry else 6)
        over = [*iter_overrides(p, total, amp), "trainer.ema.enabled=true", "trainer.ema.tau=3",
                f"arm.sources.real.subset={2 * p['batch']}"]
        res.put("note", "stopped at the end of epoch 1 (2 steps): mid-epoch resume of keypoints is not exact "
                        "(ultralytics' mosaic buffer depends on the images the process loaded before)")
    runs = out / "runs"

    def straight(name: str, fresh: bool = True):
        t = make_trainer(over, runs / f"resume-{task}-{name}", device, fresh=fresh)
        t.setup()
        t.resume()
        t.train()
        return t

    a = straight("a")
    t = make_trainer([*over, f"trainer.stop_at_step={stop}"], runs / f"resume-{task}-b", device)
    try:
        t.setup()
        t.resume()
        t.train()
        raise RuntimeError(f"trainer.stop_at_step={stop} did not stop the run")
    except TrainingInterrupted:
        pass
    b = straight("b", fresh=False)  # the same folder: resumes from last.pt at step `stop`
    c = straight("c")
    ema = a.state.ema
    model_sd = {k: v.detach() for k, v in a.state.model.state_dict().items()}
    ema_sd = ema.module.state_dict()
    on_device = {str(v.device) for v in ema_sd.values()}
    res.put("ema", {"updates": ema.updates, "expected_updates": total, "devices": sorted(on_device),
                    "finite": bool(all(torch.isfinite(v).all() for v in ema_sd.values() if v.dtype.is_floating_point)),
                    "vs_weights": _diff(model_sd, ema_sd)})
    resumed = {"model": _diff(model_sd, b.state.model.state_dict()), "ema": _diff(ema_sd, b.state.ema.module.state_dict())}
    floor = {"model": _diff(model_sd, c.state.model.state_dict()), "ema": _diff(ema_sd, c.state.ema.module.state_dict())}
    exact = device.type == "cpu"
    tol = 0.0 if exact else max(10 * floor["model"]["rel_l2"], 1e-3)
    ok = b.state.step == total and all(resumed[k]["rel_l2"] <= (0.0 if exact else max(10 * floor[k]["rel_l2"], 1e-3))
                                       for k in resumed)
    if exact:  # on a CPU the resumed run is the uninterrupted one, bit for bit
        ok = ok and all(v["max_abs"] == 0.0 for v in resumed.values())
    ema_ok = (ema.updates == total and on_device == {str(device)} and res.data["ema"]["finite"]
              and res.data["ema"]["vs_weights"]["rel_l2"] > 0)
    res.put("result", {"amp": amp, "steps": total, "stopped_at": stop, "resumed_vs_straight": resumed,
                       "straight_vs_straight": floor, "rule": "bit-identical" if exact else
                       f"relative L2 <= max(10 x straight-vs-straight, 1e-3) = {tol:.2e}", "resume_ok": ok,
                       "ema_ok": bool(ema_ok)})
    if not (ok and ema_ok):
        raise RuntimeError(f"resume_ok={ok} ema_ok={ema_ok}: see the numbers")


def stage_cli(res: Results, task: str, dry: bool, out: Path) -> None:
    p = plan(task, dry)
    amp = "bf16" if dry else "fp16"
    run_dir = out / "runs" / f"cli-{task}"
    length = p["warmup"] + p["steps"]
    args = [*p["overrides"], "trainer.unit=iter", f"trainer.length={length}", f"trainer.amp={amp}",
            f"trainer.val.interval={length // 2}", f"device={'cpu' if dry else 'cuda'}", f"hydra.run.dir={run_dir}"]
    res.put("command", "python -m vsynth " + " ".join(args))
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "vsynth", *args], cwd=out, env=env, capture_output=True, text=True)
    res.put("exit_code", proc.returncode)
    res.put("wall_s", round(time.perf_counter() - t0, 1))
    status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").is_file() else {}
    res.put("status", status.get("state"))
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    res.put("test_metrics", {k: v for k, v in metrics.items() if k.startswith("test/") and isinstance(v, (int, float))})
    log_text = (run_dir / "run.log").read_text() if (run_dir / "run.log").is_file() else ""
    res.put("log_lines", [ln.split(" - ", 1)[-1] for ln in log_text.splitlines()
                          if "Peak GPU memory" in ln or "Speed:" in ln or "Training " in ln][:4])
    if proc.returncode != 0 or status.get("state") != "done":
        res.put("stderr_tail", proc.stderr[-2000:])
        raise RuntimeError(f"python -m vsynth exited {proc.returncode} (status {status.get('state')})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", help="env | data:T | train:T | backend:T | resume:T | cli:T")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--result", type=Path, required=True)
    ap.add_argument("--cpu-dry-run", action="store_true")
    a = ap.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("VSYNTH_CACHE", str(a.out / "cache"))
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(a.out / "ultralytics-settings"))
    if a.cpu_dry_run:
        import torch

        torch.set_num_threads(1)
    res = Results(a.result)
    name, _, task = a.stage.partition(":")
    fn = {"env": stage_env, "data": stage_data, "train": stage_train, "backend": stage_backend,
          "resume": stage_resume, "cli": stage_cli}[name]
    if name == "env":
        fn(res, a.cpu_dry_run)
    else:
        if task not in TASKS:
            ap.error(f"{a.stage}: the task must be one of {TASKS}")
        fn(res, task, a.cpu_dry_run, a.out)
    failed = [k for k, v in res.data.items() if isinstance(v, dict) and v.get("ok") is False]
    if failed:
        print(f"failed parts: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
