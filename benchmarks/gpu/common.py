"""What the GPU check's stages and the backends' trainers share: the per-task settings (:func:`plan`),
config composition, the stopwatch, and the result file a stage writes as it goes."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TASKS = ("keypoints", "detection", "segmentation")


# ---- sizes ---------------------------------------------------------------------------------------
def plan(task: str, dry: bool) -> dict[str, Any]:
    """The check's settings of one task: the demo model at a GPU-sized batch (tiny on a CPU dry run).

    An epoch holds every timed step, so no epoch boundary (worker restart) falls inside the timing.
    """
    warmup, steps = (1, 2) if dry else (5, 20)
    batch = 4 if dry else {"keypoints": 32, "detection": 32, "segmentation": 16}[task]
    workers = 1 if dry else 8
    n = batch * (warmup + steps + 1)
    common = [f"trainer.batch_size={batch}", f"trainer.workers={workers}", "trainer.progress_bar=false",
              "trainer.tensorboard=false", "trainer.checkpoint.phase_snapshots=false",
              "trainer.phases=[{name: train, length: null}]", "eval.max_images=16"]
    if dry:  # and the CUDA path's layout knobs that also work on a CPU, so the dry run covers them
        common += ["trainer.threads=1", "trainer.channels_last=true", "trainer.persistent_workers=true"]
    if task == "keypoints":
        size = 64 if dry else 320
        over = ["task=keypoints", "arm=base", "model=yolo11n_pose", "data.demo.init=null", f"task.imgsz={size}",
                f"data.demo.counts.real={{train: {n}, val: 8, test: 8}}", "data.demo.counts.synthetic={train: 4, val: 4, test: 4}",
                "task.close_mosaic=0", "task.samples.per_source=2", "task.samples.predictions=2"]
        lr = 0.002
    elif task == "detection":
        size = 64 if dry else 416
        over = ["task=detection", "arm=base", "model=yolox_nano", f"task.input_size=[{size},{size}]",
                f"task.test_size=[{size},{size}]", "task.multiscale.range=null", "task.no_aug_epochs=0",
                f"data.demo.counts.real={{train: {n}, val: 8, test: 8}}", "data.demo.counts.synthetic={train: 4, val: 4, test: 4}",
                "task.samples.per_source=2", "task.samples.predictions=2"]
        lr = 0.01 / 64 * batch  # YOLOX's basic_lr_per_img x batch
    else:
        size = 64 if dry else 256
        over = ["task=segmentation", "arm=ratio", "data.ratio=0.5", f"task.crop_size=[{size},{size}]",
                f"data.demo.counts.real={{train: {n // 2}, val: 8, test: 8}}", f"data.demo.counts.generated={{train: {n // 2}}}",
                "task.stats.enabled=false", "task.samples.per_batch=4", "task.samples.predictions=2"]
        lr = 0.01
    return {"task": task, "overrides": over + common + [f"trainer.optimizer.lr={lr}"], "warmup": warmup,
            "steps": steps, "batch": batch, "workers": workers, "size": size, "lr": lr, "steps_per_epoch": n // batch}


# ---- helpers -------------------------------------------------------------------------------------
class Results:
    """The stage's result file, rewritten after every addition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def attempt(self, key: str, fn: Callable[[], Any]) -> None:
        """``fn``'s result under ``key``, or the error (the stage goes on with its other parts)."""
        t0 = time.perf_counter()
        try:
            value = fn()
            self.put(key, {"ok": True, "seconds": round(time.perf_counter() - t0, 1), **(value or {})})
        except Skip as s:
            self.put(key, {"ok": None, "skipped": str(s)})
        except Exception as e:  # noqa: BLE001 - reported, not hidden: the check lists every failure
            self.put(key, {"ok": False, "seconds": round(time.perf_counter() - t0, 1),
                           "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                           "traceback": traceback.format_exc(limit=8)})


class Skip(Exception):
    """A part that cannot run here (CUDA-only on a CPU dry run), with the reason."""


class Stopwatch:
    """Images/s between the end of step ``warmup`` and the end of step ``warmup + steps``, the device
    synchronized at those two moments only, and the peak memory from the first step on."""

    def __init__(self, device, warmup: int, steps: int, batch: int) -> None:
        self.device, self.warmup, self.steps, self.batch = device, warmup, steps, batch
        self.count = 0
        self.t0 = self.t1 = None

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def tick(self) -> bool:
        """After each step; True once the timed steps are done."""
        self.count += 1
        if self.count == self.warmup:
            self._sync()
            self.t0 = time.perf_counter()
        if self.count == self.warmup + self.steps:
            self._sync()
            self.t1 = time.perf_counter()
            return True
        return False

    def result(self) -> dict[str, Any]:
        import torch

        if self.t1 is None:
            raise RuntimeError(f"only {self.count} of {self.warmup + self.steps} steps ran")
        out = {"images_per_s": round(self.steps * self.batch / (self.t1 - self.t0), 1), "timed_steps": self.steps,
               "batch": self.batch}
        if self.device.type == "cuda":
            out["peak_mem_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
        return out


def device_for(dry: bool):
    import torch

    return torch.device("cpu") if dry else torch.device("cuda", 0)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vsynth.paths import conf_dir
    from vsynth.run.dirs import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=[f"paths.cache={os.environ['VSYNTH_CACHE']}", *overrides])


def make_task(cfg, run_dir: Path, device):
    from hydra.utils import get_class

    from vsynth.run.context import RunContext

    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(run_dir, cfg)
    task = get_class(cfg.task._target_)(cfg, ctx)
    task.device = device
    return task, ctx


def make_trainer(overrides: list[str], run_dir: Path, device, fresh: bool = True):
    """A trainer in ``run_dir`` (emptied first when ``fresh``; else it resumes from the folder's last.pt)."""
    import shutil

    from vsynth.app import seed_everything
    from vsynth.train.trainer import Trainer

    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = compose(overrides)
    seed_everything(int(cfg.seed))
    task, ctx = make_task(cfg, run_dir, device)
    return Trainer(cfg, task, ctx, device)


def iter_overrides(p: dict[str, Any], length: int, amp: str) -> list[str]:
    return [*p["overrides"], "trainer.unit=iter", f"trainer.length={length}", f"trainer.amp={amp}",
            f"trainer.val.interval={length}", "trainer.log_interval=1000000"]
